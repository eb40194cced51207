"""``steadyhand connect google|outlook --person EMAIL``: sign a person in once.

The credentials are stored encrypted (connectors/secrets.py) and refreshed silently by
later runs. Each provider's flow lives in its connector module; this only finds the
account the person's calendar (or the sending address) uses.
"""

from __future__ import annotations

from email.utils import parseaddr
from typing import Annotated

import typer

from connectors import registry
from connectors.secrets import TokenStore
from worker.cli.app import ConfigOpt, _settings, app, out
from worker.core.errors import Problem, UserError


@app.command()
def connect(
    kind: Annotated[str, typer.Argument(help="google | outlook")],
    person: Annotated[str, typer.Option("--person", help="Whose account (email).")],
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the sign-in address instead (Google).")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Sign a person in once; the token is stored encrypted and refreshed silently."""
    if kind not in ("google", "outlook"):
        raise UserError(Problem(f"cannot connect {kind!r}", "use google or outlook"))
    settings = _settings(config)
    email = person.strip().lower()
    ref = settings.calendar_ref(email)
    account = ref.account if ref is not None and ref.kind == kind else None
    if account is None and email == parseaddr(settings.mail.from_)[1].lower():
        account = settings.mail.account  # the sender of the gmail / outlook transport
    if account is None:
        raise UserError(
            Problem(
                f"{email} has no {kind} calendar in the config",
                f"give them calendar: {{account: <a {kind} account>, id: primary}}",
            )
        )
    store = TokenStore.from_env(settings.tokens_dir)
    spec = settings.account_spec(account)
    module = registry.load(kind)  # the pip hint when the extra is missing
    flow = __import__(module.__module__, fromlist=["connect"]).connect
    if kind == "google":
        flow(
            spec,
            email,
            store,
            open_browser=not no_browser,
            print_url=lambda url: out.print(
                f"Open this address to sign in: {url}", markup=False, soft_wrap=True
            ),
        )
    else:
        flow(spec, email, store, show=lambda line: out.print(line, markup=False, soft_wrap=True))
    out.print(
        f"Connected {email} ({account}); later runs refresh the token silently.", markup=False
    )
