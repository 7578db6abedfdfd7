"""Privacy audits of trained runs: how much a model's outputs give away about its train rows."""

from megalith.privacy.audit import AuditResult, audit_privacy

__all__ = ["AuditResult", "audit_privacy"]
