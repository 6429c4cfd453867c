"""What is kept of people's words and how long: retention, erasure, exports, the audit trail."""
