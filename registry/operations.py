"""Every operation's ``operationId``: the names generated clients give their functions.

Part of the contract, so kept here in one list and never derived from code that may be
renamed: a client written against ``getPolicySet`` keeps working. The spec cannot be built
with an operation missing from this list (``registry.extensions.ProblemResponses``).
"""

from __future__ import annotations

API = "/api/v1"

OPERATION_IDS: dict[tuple[str, str], str] = {
    ("get", "/healthz"): "checkLiveness",
    ("get", "/readyz"): "checkReadiness",
    ("get", f"{API}/healthz"): "getHealth",
    ("get", f"{API}/readyz"): "getReadiness",
    # people and machines
    ("post", f"{API}/auth/login"): "logIn",
    ("post", f"{API}/auth/logout"): "logOut",
    ("get", f"{API}/auth/me"): "getMe",
    ("patch", f"{API}/auth/me"): "updateMe",
    ("get", f"{API}/tokens"): "listTokens",
    ("post", f"{API}/tokens"): "createToken",
    ("get", f"{API}/tokens/{{token_id}}"): "getToken",
    ("delete", f"{API}/tokens/{{token_id}}"): "revokeToken",
    ("get", f"{API}/organisations"): "listOrganisations",
    ("post", f"{API}/organisations"): "createOrganisation",
    ("get", f"{API}/users"): "listUsers",
    ("post", f"{API}/users"): "createUser",
    ("get", f"{API}/users/{{user_id}}"): "getUser",
    ("patch", f"{API}/users/{{user_id}}"): "updateUser",
    # webhooks
    ("get", f"{API}/webhooks"): "listWebhooks",
    ("post", f"{API}/webhooks"): "createWebhook",
    ("get", f"{API}/webhooks/{{endpoint_id}}"): "getWebhook",
    ("patch", f"{API}/webhooks/{{endpoint_id}}"): "updateWebhook",
    ("delete", f"{API}/webhooks/{{endpoint_id}}"): "deleteWebhook",
    ("post", f"{API}/webhooks/{{endpoint_id}}/pause"): "pauseWebhook",
    ("post", f"{API}/webhooks/{{endpoint_id}}/resume"): "resumeWebhook",
    ("post", f"{API}/webhooks/{{endpoint_id}}/test"): "testWebhook",
    ("post", f"{API}/webhooks/{{endpoint_id}}/replay"): "replayWebhook",
    ("post", f"{API}/webhooks/{{endpoint_id}}/rotate-secret"): "rotateWebhookSecret",
    ("get", f"{API}/webhooks/{{endpoint_id}}/messages"): "listWebhookMessages",
    ("get", f"{API}/webhooks/{{endpoint_id}}/deliveries"): "listWebhookDeliveries",
    # the set and its policies
    ("get", f"{API}/policy-set"): "getPolicySet",
    ("get", f"{API}/policy-set/revisions"): "listRevisions",
    ("get", f"{API}/conditions"): "listConditionTypes",
    ("get", f"{API}/policies"): "listPolicies",
    ("post", f"{API}/policies"): "createPolicy",
    ("get", f"{API}/policies/{{slug}}"): "getPolicy",
    ("get", f"{API}/policies/{{slug}}/versions"): "listVersions",
    ("post", f"{API}/policies/{{slug}}/versions"): "createVersion",
    ("get", f"{API}/policies/{{slug}}/versions/{{number}}"): "getVersion",
    ("patch", f"{API}/policies/{{slug}}/versions/{{number}}"): "updateDraft",
    ("get", f"{API}/policies/{{slug}}/versions/{{number}}/diff"): "compareVersions",
    ("get", f"{API}/policies/{{slug}}/versions/{{number}}/odrl"): "getVersionAsOdrl",
    ("post", f"{API}/policies/{{slug}}/versions/{{number}}/submit"): "submitVersion",
    ("post", f"{API}/policies/{{slug}}/versions/{{number}}/publish"): "publishVersion",
    ("post", f"{API}/policies/{{slug}}/versions/{{number}}/withdraw"): "withdrawVersion",
    ("get", f"{API}/policies/{{slug}}/versions/{{number}}/proof"): "getVersionProof",
    # panels and reviews
    ("get", f"{API}/panels"): "listPanels",
    ("post", f"{API}/panels"): "createPanel",
    ("get", f"{API}/panels/{{panel_id}}"): "getPanel",
    ("get", f"{API}/panels/{{panel_id}}/members"): "listMembers",
    ("post", f"{API}/panels/{{panel_id}}/members"): "addMember",
    ("delete", f"{API}/panels/{{panel_id}}/members"): "endMembership",
    ("get", f"{API}/reviews"): "listReviews",
    ("get", f"{API}/reviews/{{review_id}}"): "getReview",
    ("put", f"{API}/reviews/{{review_id}}/votes/me"): "castVote",
    ("post", f"{API}/reviews/{{review_id}}/conflicts"): "declareConflict",
    ("post", f"{API}/reviews/{{review_id}}/close"): "closeReview",
    ("put", f"{API}/reviews/{{review_id}}/recommendation"): "recordRecommendation",
    ("get", f"{API}/reviews/{{review_id}}/impact"): "getReviewImpact",
    # decisions
    ("get", f"{API}/decisions"): "listDecisions",
    ("post", f"{API}/decisions"): "createDecision",
    ("get", f"{API}/decisions/{{decision_id}}"): "getDecision",
    ("get", f"{API}/decisions/{{decision_id}}/proof"): "getDecisionProof",
    # the audit trail
    ("get", f"{API}/audit-events"): "listAuditEvents",
    ("get", f"{API}/audit-events/export"): "exportAuditEvents",
    ("get", f"{API}/audit-events/verify"): "verifyAuditTrail",
    ("get", f"{API}/audit-events/checkpoint"): "getLatestCheckpoint",
    ("get", f"{API}/audit-events/verifier-key"): "getVerifierKey",
    ("get", f"{API}/log/checkpoint"): "getLogCheckpoint",
    ("get", f"{API}/log/tile/{{level}}/{{index}}"): "getTile",
    ("get", f"{API}/log/tile/entries/{{index}}"): "getEntryBundle",
    ("get", f"{API}/audit-events/{{seq}}/inclusion"): "getInclusionProof",
    ("get", f"{API}/audit-events/consistency"): "getConsistencyProof",
    # witnessing other logs
    ("post", "/witness/add-checkpoint"): "addCheckpoint",
    ("get", "/witness/verifier-key"): "getWitnessKey",
    ("get", "/witness/{origin_hash}/checkpoint"): "getWitnessedCheckpoint",
}
