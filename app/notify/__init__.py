"""Notifications: channels, the outbox and its dispatcher (SPEC section 7)."""
