"""Builders for the actions dialerd sends, so every Originate follows the same rules.

The rules come from the sandbox (see /work/shared/notes/asterisk.md):
- `Async: true` always (a synchronous Originate blocks Asterisk's manager thread, and
  its response carries no Uniqueid).
- `ChannelId: <call_id>-a`, `OtherChannelId: <call_id>-b`: the ids are known before the
  call starts, and the suffixes stop one id being a prefix of another (which Asterisk
  rejects with Reason 0).
- dialerd's own variables are set with `__` so every later channel inherits them, which is
  what lets the call tracker adopt calls after a restart.
"""

from __future__ import annotations

from collections.abc import Mapping

from dialerd.ami.calls import LEG_A, LEG_B
from dialerd.ami.codec import Action, LocalProtocolError, safe_value

__all__ = ["caller_id", "hangup", "originate", "unescape_c"]

# The caller-ID name rides inside `"..."` of the CallerID header; 80 bytes is the most
# any trunk carries, and keeps the header far below Asterisk's 1024-byte line limit.
CALLER_NAME_LIMIT = 80
CALLER_NUMBER_LIMIT = 40


def caller_id(name: str | None, number: str | None) -> str:
    """A CallerID header value that survives any input: CR/LF/NUL become spaces, the
    name is cut to 80 UTF-8 bytes, and `"`/`\\` are backslash-escaped inside the quotes
    (Asterisk's ast_callerid_parse unescapes them)."""
    clean_name = safe_value(name or "", CALLER_NAME_LIMIT)
    clean_number = "".join(
        c for c in safe_value(number or "", CALLER_NUMBER_LIMIT) if c not in '<>"'
    )
    quoted = clean_name.replace("\\", "\\\\").replace('"', '\\"')
    if clean_number:
        return f'"{quoted}" <{clean_number}>'
    return f'"{quoted}"'


_C_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def unescape_c(text: str) -> str:
    """Undo the C-style escaping Asterisk applies to CallerIDName/ConnectedLineName in
    events (`\\"`, `\\'`, `\\\\`, `\\n`...), so a name round-trips to what was sent."""
    if "\\" not in text:
        return text
    out: list[str] = []
    it = iter(text)
    for ch in it:
        if ch != "\\":
            out.append(ch)
            continue
        nxt = next(it, "")
        out.append(_C_ESCAPES.get(nxt, nxt))
    return "".join(out)


def originate(
    call_id: str,
    channel: str,
    *,
    context: str = "dialerd-outbound",
    exten: str = "s",
    priority: int = 1,
    lead: str | None = None,
    attempt: str | None = None,
    campaign: str | None = None,
    amd: bool = False,
    message_drop: str | None = None,
    caller_name: str | None = None,
    caller_number: str | None = None,
    ring_timeout: float = 30.0,
    variables: Mapping[str, str] | None = None,
) -> Action:
    """The Originate for one customer call (or an agent's nailed-up leg).

    `variables` are extra channel variables; prefix a name with `__` to have it inherited.
    A value holding a comma is refused: Asterisk splits `Variable:` values on commas.
    """
    if not call_id or any(c in call_id for c in " ;/,\r\n"):
        raise LocalProtocolError(f"call_id {call_id!r} must be a plain token")
    pairs: list[tuple[str, str]] = [
        ("Channel", channel),
        ("Context", context),
        ("Exten", exten),
        ("Priority", str(priority)),
        ("Async", "true"),
        ("Timeout", str(int(ring_timeout * 1000))),
        ("ChannelId", call_id + LEG_A),
        ("OtherChannelId", call_id + LEG_B),
    ]
    if caller_name is not None or caller_number is not None:
        pairs.append(("CallerID", caller_id(caller_name, caller_number)))
    own = {"__DIALERD_LEAD": lead, "__DIALERD_ATTEMPT": attempt, "__DIALERD_CAMPAIGN": campaign}
    merged: dict[str, str] = {k: v for k, v in own.items() if v is not None}
    merged["DIALERD_AMD"] = "1" if amd else "0"
    if message_drop:
        merged["DIALERD_MESSAGE_DROP"] = message_drop
    merged.update(variables or {})
    for name, value in merged.items():
        if "," in value or "=" in name:
            raise LocalProtocolError(
                f"variable {name}={value!r}: no ',' in values, no '=' in names"
            )
        pairs.append(("Variable", f"{name}={value}"))
    return Action("Originate", tuple(pairs))


def hangup(channel: str, cause: int = 16) -> Action:
    """Hang up one channel (its full name, or a `/regex/`)."""
    return Action("Hangup", (("Channel", channel), ("Cause", str(cause))))
