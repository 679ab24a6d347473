"""Test-wide settings."""

import alerts.log

# Every late lab that takes the fast path is checked against the full re-fold.
alerts.log.VERIFY_FAST_PATH = True
