"""Closing a cycle (SPEC section 8): the retrospective, the review and its export, the quality
findings of OKR practice, and the carry-over of unfinished key results into the next cycle."""
