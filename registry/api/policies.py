"""Policies and their versions: read by everyone (published), changed by editors."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, request, url_for
from flask.views import MethodView

from registry.api.base import (
    PROOF_RESPONSE,
    Blueprint,
    conditional,
    page_after,
    paged,
    problems,
    proof_response,
)
from registry.db import current_session
from registry.errors import NotFound
from registry.present.reviews import review_out
from registry.present.versions import compare, policy_out, version_out
from registry.schemas.policy import (
    ConditionTypeSchema,
    DiffQuerySchema,
    DiffSchema,
    PolicyCreateSchema,
    PolicyQuerySchema,
    PolicySchema,
    SubmitSchema,
    VersionCreateSchema,
    VersionQuerySchema,
    VersionSchema,
    VersionUpdateSchema,
)
from registry.schemas.review import ReviewSchema
from registry.security import Permission, current_actor, requires
from registry.services import audit, catalogue, chain, content, odrl, policies, reviews
from registry.web import not_modified

blp = Blueprint(
    "policies",
    __name__,
    description="The policies of the London-wide set and their immutable versions.",
)

ETAG_HEADER = {"ETag": {"description": "Strong ETag of the version.", "schema": {"type": "string"}}}


def _version_response(version: Any, status: int = 200) -> Any:
    review = reviews.reviews_for_versions(current_session(), [version.id]).get(version.id)
    etag = policies.etag(version)
    if status == 200 and not_modified(etag):
        return Response(status=304, headers={"ETag": etag})
    headers = {"ETag": etag}
    if policies.is_public(version):
        headers["Cache-Control"] = "public, no-cache"
    return version_out(version, review), status, headers


@blp.route("/conditions")
class Conditions(MethodView):
    @requires(Permission.PUBLIC)
    @blp.response(200, ConditionTypeSchema(many=True))
    def get(self) -> Any:
        """List the condition catalogue: what each condition means and asks"""
        rows = policies.list_condition_types(current_session())
        out = []
        for row in rows:
            entry = catalogue.get(row.code)
            facts = [
                {"name": f.name, "question": f.question, "schema": f.schema}
                for f in (entry.facts if entry else ())
            ]
            out.append(
                {
                    **{k: getattr(row, k) for k in ConditionTypeSchema().fields if k != "facts"},
                    "facts": facts,
                }
            )
        return out


@blp.route("/policies")
class Policies(MethodView):
    @requires(Permission.PUBLIC)
    @blp.arguments(PolicyQuerySchema(), location="query")
    @blp.response(200, PolicySchema(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        """List policies (the public sees those with a submitted version; editors all)"""
        actor = current_actor()
        session = current_session()
        page = policies.list_policies(
            session,
            actor,
            purpose=args.get("purpose"),
            data_category=args.get("data_category"),
            state=args.get("state"),
            q=args.get("q"),
            limit=args["limit"],
            after=page_after(args),
        )
        latest = policies.latest_numbers(session, [p.id for p in page.items], actor)
        items, status, headers = paged(page)
        return [policy_out(p, latest.get(p.id)) for p in items], status, headers

    @requires(Permission.POLICY_EDIT)
    @blp.arguments(PolicyCreateSchema())
    @blp.response(201, VersionSchema, headers=ETAG_HEADER)
    @problems(409)
    def post(self, body: dict[str, Any]) -> Any:
        """Create a policy; its first version is a draft"""
        version = policies.create_policy(current_session(), current_actor(), body)
        return _version_response(version, 201)


@blp.route("/policies/<string:slug>")
class PolicyItem(MethodView):
    @requires(Permission.PUBLIC)
    @blp.response(200, PolicySchema)
    def get(self, slug: str) -> Any:
        """Show a policy"""
        actor = current_actor()
        session = current_session()
        policy = policies.get_policy(session, actor, slug)
        latest = policies.latest_numbers(session, [policy.id], actor)
        return policy_out(policy, latest.get(policy.id))


@blp.route("/policies/<string:slug>/versions")
class Versions(MethodView):
    @requires(Permission.PUBLIC)
    @blp.arguments(VersionQuerySchema(), location="query")
    @blp.response(200, VersionSchema(many=True))
    def get(self, args: dict[str, Any], slug: str) -> Any:
        """List a policy's versions (the public sees every one submitted; editors drafts too)"""
        session = current_session()
        page = policies.list_versions(
            session,
            current_actor(),
            slug,
            status=args.get("status"),
            limit=args["limit"],
            after=page_after(args),
        )
        found = reviews.reviews_for_versions(session, [v.id for v in page.items])
        items, status, headers = paged(page)
        return [version_out(v, found.get(v.id)) for v in items], status, headers

    @requires(Permission.POLICY_EDIT)
    @blp.arguments(VersionCreateSchema())
    @blp.response(201, VersionSchema, headers=ETAG_HEADER)
    @problems(409)
    def post(self, body: dict[str, Any], slug: str) -> Any:
        """Start a new draft (or a retirement) from the latest version"""
        version = policies.new_version(
            current_session(),
            current_actor(),
            slug,
            retire=body["retire"],
            based_on=body.get("based_on"),
        )
        return _version_response(version, 201)


@blp.route("/policies/<string:slug>/versions/<id:number>")
class VersionItem(MethodView):
    @requires(Permission.PUBLIC)
    @blp.response(200, VersionSchema, headers=ETAG_HEADER)
    @conditional()
    def get(self, slug: str, number: int) -> Any:
        """Show a version, with its content hash and, once published, its review"""
        return _version_response(
            policies.get_version(current_session(), current_actor(), slug, number)
        )

    @requires(Permission.POLICY_EDIT)
    @blp.arguments(VersionUpdateSchema())
    @blp.response(200, VersionSchema, headers=ETAG_HEADER)
    @blp.doc(
        parameters=[
            {
                "in": "header",
                "name": "If-Match",
                "required": True,
                "schema": {"type": "string"},
                "description": "The ETag you last read.",
            }
        ]
    )
    @problems(409, 412, 428)
    def patch(self, body: dict[str, Any], slug: str, number: int) -> Any:
        """Change a draft (If-Match required: 428 without it, 412 when stale)"""
        version = policies.update_draft(
            current_session(),
            current_actor(),
            slug,
            number,
            request.headers.get("If-Match"),
            body,
        )
        return _version_response(version)


@blp.route("/policies/<string:slug>/versions/<id:number>/withdraw")
class Withdraw(MethodView):
    @requires(Permission.POLICY_EDIT)
    @blp.response(200, VersionSchema, headers=ETAG_HEADER)
    @problems(409, 412)
    def post(self, slug: str, number: int) -> Any:
        """Withdraw a draft or a version in review (its open review ends)"""
        version = policies.withdraw(current_session(), current_actor(), slug, number)
        return _version_response(version)


@blp.route("/policies/<string:slug>/versions/<id:number>/submit")
class Submit(MethodView):
    @requires(Permission.POLICY_EDIT)
    @blp.arguments(SubmitSchema())
    @blp.response(201, ReviewSchema)
    @problems(409, 412)
    def post(self, body: dict[str, Any], slug: str, number: int) -> Any:
        """Send a draft to a citizen panel: it freezes, and a review opens"""
        review = policies.submit(
            current_session(),
            current_actor(),
            slug,
            number,
            body["panel_id"],
            body.get("closes_at"),
            body.get("public_benefit"),
        )
        return review_out(review)


@blp.route("/policies/<string:slug>/versions/<id:number>/publish")
class Publish(MethodView):
    @requires(Permission.POLICY_EDIT)
    @blp.response(200, VersionSchema, headers=ETAG_HEADER)
    @problems(409, 412)
    def post(self, slug: str, number: int) -> Any:
        """Publish an endorsed version: the set's next revision"""
        return _version_response(policies.publish(current_session(), current_actor(), slug, number))


@blp.route("/policies/<string:slug>/versions/<id:number>/odrl")
class Odrl(MethodView):
    @requires(Permission.PUBLIC)
    @blp.response(200, description="The version as an ODRL 2.2 policy (JSON-LD).")
    @blp.doc(
        responses={
            200: {
                "content": {
                    "application/ld+json": {
                        "schema": {
                            "type": "object",
                            "required": ["@context", "@type", "uid"],
                            "properties": {
                                "@context": {
                                    "type": "array",
                                    "items": {
                                        "anyOf": [
                                            {"type": "string", "format": "uri"},
                                            {
                                                "type": "object",
                                                "additionalProperties": {"type": "string"},
                                            },
                                        ]
                                    },
                                },
                                "@type": {"type": "string", "const": "Set"},
                                "uid": {"type": "string", "format": "uri"},
                            },
                        }
                    }
                },
                "headers": ETAG_HEADER,
            }
        }
    )
    @conditional()
    def get(self, slug: str, number: int) -> Response:
        """The version as an ODRL 2.2 JSON-LD policy, with DUO terms where they exist"""
        version = policies.get_version(current_session(), current_actor(), slug, number)
        etag = policies.etag(version)
        if not_modified(etag):
            return Response(status=304, headers={"ETag": etag})
        document = odrl.policy_document(
            content.content_document(version),
            uid=url_for(".VersionItem", slug=slug, number=number, _external=True),
            content_hash=version.content_hash,
            in_force_from=chain.format_time(version.in_force_from)
            if version.in_force_from
            else None,
        )
        return Response(
            json.dumps(document, indent=2, sort_keys=True),
            mimetype="application/ld+json",
            headers={"ETag": etag},
        )


@blp.route("/policies/<string:slug>/versions/<id:number>/proof")
class VersionProof(MethodView):
    @requires(Permission.PUBLIC)
    @blp.doc(responses=PROOF_RESPONSE)
    @problems(404)
    def get(self, slug: str, number: int) -> Response:
        """A c2sp.org/tlog-proof that the version was published as it reads, checkable offline"""
        session = current_session()
        version = policies.get_version(session, current_actor(), slug, number)
        entity = f"{slug}/{version.number}"
        proof = audit.proof_of(session, "policy_version", entity, "version.published")
        if proof is None:
            raise NotFound(f"Version {number} of {slug} has not been published.")
        return proof_response(proof)


@blp.route("/policies/<string:slug>/versions/<id:number>/diff")
class Diff(MethodView):
    @requires(Permission.PUBLIC)
    @blp.arguments(DiffQuerySchema(), location="query")
    @blp.response(200, DiffSchema)
    def get(self, args: dict[str, Any], slug: str, number: int) -> Any:
        """Compare a version with another: the text as a unified diff, conditions by meaning"""
        session = current_session()
        actor = current_actor()
        new = policies.get_version(session, actor, slug, number)
        against = args.get("against", number - 1)
        if against < 1:
            raise NotFound("Version 1 has no version before it: name one with ?against=.")
        old = policies.get_version(session, actor, slug, against)
        return compare(old, new)
