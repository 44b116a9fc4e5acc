"""Who is using the app, in which role, and which pages that role may open.

Roles: ``executive`` (summary figures only; account ids, IPs and counterparties masked),
``supervisor`` (adds exploration and data), ``analyst`` and ``admin`` (every page).

- With an ``[auth]`` section in ``.streamlit/secrets.toml``, users sign in with ``st.login`` and
  their role comes from a role map file, ``.streamlit/roles.toml`` (or ``$FRAUDLENS_ROLES_FILE``)::

      [roles]
      "ana.quispe@sbs.gob.pe" = "supervisor"
      "luis.rojas@sbs.gob.pe" = "executive"

  A signed-in user who is not in the map gets no page.
- Without it, the app is in *local mode*: a clearly labelled role picker in the sidebar (key
  ``role``, default ``analyst``) for a single user on their own computer.

``app.py`` registers with ``st.navigation`` only the pages of the role (:func:`navigation`),
so other pages cannot be opened; a page run on its own checks again (:func:`require`).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from fraudlens import export
from fraudlens.errors import FraudLensError
from fraudlens.schema import PERSONAL

logger = logging.getLogger(__name__)

ROLES = ("executive", "supervisor", "analyst", "admin")
DEFAULT_LOCAL_ROLE = "analyst"
ROLE_PARAM = "role"  # local mode only: the role in the page's URL
ROLE_KEY = "role"  # the local-mode picker's widget key
NAME_KEY = "user_name"  # the local-mode name box
ACTIVE_ROLE = "active_role"  # the role this run uses, whatever the mode
ROLES_FILE_ENV = "FRAUDLENS_ROLES_FILE"
ROOT = Path(__file__).resolve().parents[2]

# What executives never see: account ids, IPs, and counterparties (for a transfer the
# "merchant" is the receiving account).
EXECUTIVE_MASKED = (*PERSONAL, "merchant_id")

_EVERYONE = frozenset(ROLES)
_STAFF = frozenset({"supervisor", "analyst", "admin"})
_ANALYSTS = frozenset({"analyst", "admin"})
_ADMINS = frozenset({"admin"})


@dataclass(frozen=True)
class PageSpec:
    """A page file, its menu title and group, and the roles that may open it."""

    path: str
    title: str
    group: str
    roles: frozenset[str]
    default: bool = False


CATALOGUE = (
    PageSpec("pages/home.py", "Home", "Overview", _EVERYONE, default=True),
    PageSpec("pages/overview.py", "Overview", "Overview", _EVERYONE),
    PageSpec("pages/monitoring.py", "Monitoring", "Overview", _EVERYONE),
    PageSpec("pages/explore.py", "Explore", "Analysis", _STAFF),
    PageSpec("pages/alerts.py", "Alerts", "Cases", _ANALYSTS),
    PageSpec("pages/approvals.py", "Approvals", "Cases", _ANALYSTS),
    PageSpec("pages/models.py", "Models", "Models", _ANALYSTS),
    PageSpec("pages/thresholds.py", "Thresholds", "Models", _ANALYSTS),
    PageSpec("pages/explain.py", "Explain", "Models", _ANALYSTS),
    PageSpec("pages/data.py", "Data", "Data", _STAFF),
    PageSpec("pages/audit.py", "Audit", "Governance", _ADMINS),
)
# Any other page file is for analysts and admins ("all pages"), under this group.
OTHER_GROUP = "Models"


def _title(path: Path) -> str:
    return path.stem.replace("_", " ").strip().capitalize()


def page_specs(root: Path = ROOT) -> list[PageSpec]:
    """The catalogue's pages that exist, then every other ``pages/*.py`` (analysts and admins)."""
    known = {spec.path for spec in CATALOGUE}
    specs = [spec for spec in CATALOGUE if (root / spec.path).is_file()]
    for path in sorted((root / "pages").glob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel not in known and not path.name.startswith("_"):
            specs.append(PageSpec(rel, _title(path), OTHER_GROUP, _ANALYSTS))
    return specs


def pages_for(role: str, root: Path = ROOT) -> list[PageSpec]:
    """The pages ``role`` may open, in menu order."""
    return [spec for spec in page_specs(root) if role in spec.roles]


def may_open(role: str | None, path: str, root: Path = ROOT) -> bool:
    return role is not None and any(spec.path == path for spec in pages_for(role, root))


def navigation(role: str) -> dict[str, list]:
    """``{group: [st.Page, ...]}`` of the role's pages, for ``st.navigation``."""
    groups: dict[str, list] = {}
    for spec in pages_for(role):
        groups.setdefault(spec.group, []).append(
            st.Page(ROOT / spec.path, title=spec.title, default=spec.default))
    return groups


def page_link(path: str, label: str, container=st) -> None:
    """A link to page ``path`` (e.g. ``"pages/data.py"``), drawn only if the role may open it."""
    if may_open(role(), path):
        container.page_link(str(ROOT / path), label=label)


def switch_page(path: str) -> None:
    """Go to page ``path``; the caller checks :func:`may_open` first."""
    st.switch_page(str(ROOT / path))


# ---------------------------------------------------------------------------------------------
# Role map (sign-in mode)
# ---------------------------------------------------------------------------------------------


def roles_file() -> Path:
    return Path(os.environ.get(ROLES_FILE_ENV) or Path(".streamlit") / "roles.toml")


def load_role_map(path: Path) -> dict[str, str]:
    """``{email (lower case): role}`` from a role map file; FraudLensError if it is unusable."""
    try:
        with Path(path).open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise FraudLensError(
            f"Sign-in is configured but the role map {path} does not exist. Create it with a "
            "[roles] table mapping each e-mail address to one of " + ", ".join(ROLES) + "."
        ) from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise FraudLensError(f"The role map {path} cannot be read ({exc}).") from exc
    table = data.get("roles", data)
    if not isinstance(table, dict):
        raise FraudLensError(f"The role map {path} must have a [roles] table of e-mail = role.")
    out = {}
    for email, role in table.items():
        if role not in ROLES:
            raise FraudLensError(
                f"The role map {path} gives '{email}' the role {role!r}; roles are "
                + ", ".join(ROLES) + "."
            )
        out[str(email).strip().lower()] = role
    return out


def auth_configured() -> bool:
    """True when ``.streamlit/secrets.toml`` has an ``[auth]`` section (sign-in mode)."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:  # no secrets file at all
        return False


# ---------------------------------------------------------------------------------------------
# The role of this run
# ---------------------------------------------------------------------------------------------


def _local_role() -> str:
    """The local-mode role: the picker's value, read before the picker is drawn (it is drawn in
    the sidebar after ``st.navigation``, where its widget identity is the same on every page)."""
    value = st.session_state.get(ROLE_KEY)
    if value not in ROLES:
        value = st.query_params.get(ROLE_PARAM)  # a reload starts a new session: the URL keeps the role
    if value not in ROLES:
        value = DEFAULT_LOCAL_ROLE
    # Written back every run so the choice survives runs that draw no picker.
    st.session_state[ROLE_KEY] = value
    st.session_state[NAME_KEY] = st.session_state.get(NAME_KEY) or ""
    _keep_in_url(value)
    return value


def _keep_in_url(value: str) -> None:
    if value == DEFAULT_LOCAL_ROLE:
        if ROLE_PARAM in st.query_params:
            del st.query_params[ROLE_PARAM]
    elif st.query_params.get(ROLE_PARAM) != value:
        st.query_params[ROLE_PARAM] = value


def _signed_in_role() -> str:
    if importlib.util.find_spec("authlib") is None:
        st.error("Sign-in is configured ([auth] in .streamlit/secrets.toml) but the Authlib package "
                 "it needs is not installed: run `pip install \"Authlib>=1.3.2\"`, or remove the "
                 "[auth] section to use local mode.")
        st.stop()
    user = st.user
    if not user.is_logged_in:
        st.title("FraudLens")
        st.write("Sign in with your organisation account to continue.")
        st.button("Sign in", key="auth_login", type="primary", on_click=st.login)
        st.stop()
    email = _email()
    try:
        role_ = load_role_map(roles_file()).get(email)
    except FraudLensError as exc:
        st.error(str(exc))
        st.stop()
    if role_ is None:
        st.error(f"{email or 'This account'} has no FraudLens role yet. Ask an administrator to "
                 f"add it to {roles_file()}.")
        st.button("Sign out", key="auth_logout_norole", on_click=st.logout)
        st.stop()
    return role_


def _email() -> str:
    return str(st.user.get("email") or "").strip().lower()


def current_role() -> str:
    """Resolve the role of this run and remember it (shows the sign-in screen and stops when
    sign-in is configured and nobody is signed in)."""
    role_ = _signed_in_role() if auth_configured() else _local_role()
    st.session_state[ACTIVE_ROLE] = role_
    return role_


def draw_identity() -> None:
    """In the sidebar: the local-mode role picker, or who is signed in and a sign-out button."""
    with st.sidebar:
        if auth_configured():
            st.caption(f"Signed in as {_email()} ({role()}).")
            st.button("Sign out", key="auth_logout", on_click=st.logout)
            return
        st.selectbox(
            "Role (local mode)", ROLES, key=ROLE_KEY, format_func=str.capitalize,
            help="Local mode: no sign-in is configured, so the role is chosen here. Add an [auth] "
                 "section to .streamlit/secrets.toml and a role map (.streamlit/roles.toml) to "
                 "make users sign in.",
        )
        st.text_input(
            "Your name (local mode)", key=NAME_KEY, max_chars=60,
            help="Recorded in the audit log with the role. Approving a change needs a second person: "
                 "a proposal cannot be approved under the name that made it.",
        )
        st.caption("**Local mode**: no sign-in is configured; pick the role to work as.")


def user() -> str:
    """Who the audit log records: the signed-in e-mail with the role; in local mode the typed
    name (or nothing) with the role."""
    role_ = role()
    try:
        if auth_configured() and st.user.is_logged_in:
            return f"{st.user.get('email') or 'signed-in user'} ({role_})"
    except (AttributeError, KeyError):
        pass
    name = " ".join(str(st.session_state.get(NAME_KEY) or "").split())
    return f"{name} ({role_}, local mode)" if name else f"{role_} (local mode)"


def named() -> bool:
    """True when the acting person is known by name: signed in, or a name typed in local mode."""
    if auth_configured():
        return True
    return bool(" ".join(str(st.session_state.get(NAME_KEY) or "").split()))


def role() -> str:
    """The role resolved for this run; the least privileged one if none was."""
    value = st.session_state.get(ACTIVE_ROLE)
    return value if value in ROLES else "executive"


def require(path: str) -> None:
    """Stop the page with a message unless the current role may open ``path``."""
    if not may_open(role(), path):
        st.error(f"The {role()} role cannot open this page. Pick a page from the menu.")
        st.stop()


def masks_personal(role_: str | None = None) -> bool:
    """Executives never see account ids or IP addresses."""
    return (role_ or role()) == "executive"


def protect(frame: pd.DataFrame, role_: str | None = None) -> pd.DataFrame:
    """``frame`` as the role may see it (EXECUTIVE_MASKED columns masked for executives)."""
    return export.mask_personal(frame, EXECUTIVE_MASKED) if masks_personal(role_) else frame
