"""Commands of the security model: `keys new` (issue an API key) and `delete` (erasure)."""

from __future__ import annotations

import json

import click

from osmose.cli.common import (
    json_option,
    requested_tenant,
    run_async,
    settings_from,
    setup_logging,
    tenant_option,
)
from osmose.security.entitlements import PLANS

__all__ = ["delete", "keys"]


@click.group()
def keys() -> None:
    """API keys for service accounts (the server stores only their hashes)."""


@keys.command("new")
@click.option("--tenant", required=True, help="The tenant the key acts for.")
@click.option("--plan", type=click.Choice(list(PLANS)), default="business", show_default=True,
              help="Entitlements: tiers, priority lane, quotas.")
@click.option("--name", default=None, help="Who holds it (shown in audit lines). Default: <tenant>-bot.")
@click.option("--admin", is_flag=True, help="May act on every tenant (delete tenants, cross-tenant stats). Audited.")
def new_key(tenant: str, plan: str, name: str | None, admin: bool) -> None:
    """Print a new API key and the entry to add to the keys file (OSMOSE_API_KEYS_FILE).

    The key is shown once, on stdout; give it to the client (OSMOSE_API_KEY). The entry
    (on stderr) holds only its SHA-256: append it under `keys:` in the Secret that holds
    the keys file, then roll the services (they read the file at start).
    """
    from osmose.security import generate_api_key, hash_api_key

    key = generate_api_key()
    entry = {"name": name or f"{tenant}-bot", "sha256": hash_api_key(key), "tenant": tenant, "plan": plan,
             "roles": ["admin"] if admin else []}
    click.echo(key)
    click.echo("add under `keys:` in the keys file:\n  - " + json.dumps(entry), err=True)


@click.command()
@click.option("--server", required=True, metavar="HOST:PORT", help="The persister's (or `serve all`'s) address.")
@tenant_option
@click.option("--document", "doc_id", default=None, metavar="DOC_ID", help="Erase this document of the tenant.")
@click.option("--all-of-tenant", is_flag=True, help="Erase every document of the tenant (admin credential).")
@json_option
def delete(server: str, tenant: str | None, doc_id: str | None, all_of_tenant: bool, as_json: bool) -> None:
    """Erase a document, or all of a tenant's data, from the graph, the vector index, the
    caches and the claim-check blob store.

    Idempotent: erasing again removes nothing more and succeeds (zero counts). Each erasure
    is a job: its id is printed, and GetJob on the front door answers its outcome and counts. The tenant is the
    credential's own unless --tenant names another (which needs an admin credential).
    Every erasure is written to the audit log. Exit status 0 on success, 1 when refused.
    """
    from osmose.hosts.service_client import RequestRejected, ServiceClient

    if bool(doc_id) == all_of_tenant:
        raise click.UsageError("give exactly one of --document DOC_ID and --all-of-tenant")
    settings = settings_from(tenant=tenant, server=server)
    setup_logging(settings, 0)
    who = requested_tenant(settings, tenant)

    async def go():  # noqa: ANN202
        async with ServiceClient.from_settings(server, settings) as client:
            if all_of_tenant:
                return await client.delete_tenant(who)
            return await client.delete_document(doc_id or "", tenant=who)

    try:
        response = run_async(go())
    except RequestRejected as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps({"tenant": response.tenant, "documents": response.documents,
                               "chunks": response.chunks, "cache_entries": response.cache_entries,
                               "blobs": response.blobs, "job_id": response.job_id}))
    else:
        extra = (f", {response.cache_entries} cache entries and {response.blobs} stored file(s)"
                 if response.cache_entries or response.blobs else "")
        click.echo(f"erased {response.documents} document(s) and {response.chunks} chunk(s){extra} of tenant "
                   f"{response.tenant} (job {response.job_id})")
