"""Mail: SMTP and the dev sink behind one interface, messages with iCalendar invitations, outbox delivery."""
