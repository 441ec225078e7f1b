"""The ``palermo`` command: the composition root assembles each role's command group.

The node's commands come from :mod:`node.cli`, the broker's from :mod:`broker.cli`; operator
and tooling groups (federation, agency, keys, policy, directory, schema, envelope, deploy,
demo, dev) live here. Nothing imports this package.
"""

from __future__ import annotations

from broker.cli import audit_app, broker_app, dead_app
from node.cli import (
    import_reports,
    inbox_app,
    messages_cmd,
    misp_app,
    node_app,
    officer_app,
    publish,
    release_app,
    request_cmd,
    respond_cmd,
    retract,
    stats_app,
    status,
    stix_app,
    subscribe,
    taxii_app,
)
from protocol.commandline import handles_errors

from ._app import app
from ._deploy import deploy_app
from ._directory import directory_app
from ._envelope import envelope_app
from ._federation import agency_app, federation_app
from ._keys import keys_app
from ._policy import policy_app
from ._schema import schema_app

app.add_typer(envelope_app, name="envelope")
app.add_typer(keys_app, name="keys")
app.add_typer(schema_app, name="schema")
app.add_typer(federation_app, name="federation")
app.add_typer(agency_app, name="agency")
app.add_typer(policy_app, name="policy")
app.add_typer(node_app, name="node")
app.add_typer(inbox_app, name="inbox")
app.add_typer(stats_app, name="stats")
app.add_typer(taxii_app, name="taxii")
app.add_typer(stix_app, name="stix")
app.add_typer(misp_app, name="misp")
app.add_typer(officer_app, name="officer")
app.command("publish")(handles_errors(publish))
app.command("status")(handles_errors(status))
app.command("retract")(handles_errors(retract))
app.command("subscribe")(handles_errors(subscribe))
app.command("import")(handles_errors(import_reports))
app.add_typer(release_app, name="release")
app.command("request")(handles_errors(request_cmd))
app.command("respond")(handles_errors(respond_cmd))
app.command("requests")(handles_errors(messages_cmd))
app.add_typer(broker_app, name="broker")
app.add_typer(audit_app, name="audit")
app.add_typer(directory_app, name="directory")
app.add_typer(dead_app, name="dead")
app.add_typer(deploy_app, name="deploy")

__all__ = ["app", "main"]


def main() -> None:
    from protocol.logs import quiet_known_noise

    quiet_known_noise()
    app()
