"""Every `workflow.patched` id in use, with why it exists (docs/versioning.md has the life cycle).

A patch id lives as long as any history that lacks it might still be replayed: once no open workflow
started before the patch remains (and `tests/replay/histories/` has no older history of that path),
the old branch goes, `workflow.deprecate_patch(id)` stays one more release, then the id goes too.
"""

from __future__ import annotations

# 2026-12-04. A hold that expired only wrote the guest's notice to the outbox, where the retry sweep
# found it ten minutes later; every other notice is sent by the booking itself, at once.
EXPIRED_NOTICE_SENT_AT_ONCE = "expired-notice-sent-at-once"
