"""Calendar access: busy times to match against, events to write for confirmed bookings."""
