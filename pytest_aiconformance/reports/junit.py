"""Give JUnit testcases their stable conformance names (e.g. `TestSecureAcceleratorAccess/...`).

pytest names a testcase after the Python function; CNCF evidence references use
`junit.xml#<TestName>`, mapped where possible to the upstream Go suite's test names. Each
check carries its name as the `junit_name` user property, and this pass copies it into the
testcase's `name` attribute. It edits the start tags in place (no XML re-serialisation), so
every other byte of the file stays as pytest wrote it.
"""

from __future__ import annotations

import re
from pathlib import Path

from pytest_aiconformance.verdicts.model import PROP_JUNIT_NAME

# pytest writes the file with ElementTree: attributes double-quoted, text escaped, no CDATA,
# so a literal '<testcase', '<property' or '</testcase>' can only be markup.
_TESTCASE = re.compile(r"<testcase\b(?P<attrs>[^>]*?)(?P<end>/?)>")
_CLOSE = "</testcase>"
_PROPERTY = re.compile(r"<property\b(?P<attrs>[^>]*?)/?>")
_ATTR = re.compile(r'(?P<key>[\w:.-]+)="(?P<value>[^"]*)"')
_NAME_ATTR = re.compile(r'(?<=\s)name="[^"]*"')


def _attrs(text: str) -> dict[str, str]:
    return {m.group("key"): m.group("value") for m in _ATTR.finditer(text)}


def rename_testcases_in_text(xml: str, prop: str = PROP_JUNIT_NAME) -> tuple[str, int]:
    """Return the XML with each testcase renamed to its `prop` property, and how many changed.

    Values are copied still escaped (both are attribute values), so no re-escaping is needed.
    """
    out: list[str] = []
    pos = 0
    changed = 0
    for match in _TESTCASE.finditer(xml):
        if match.start() < pos:
            continue  # inside a testcase body already copied (cannot happen with pytest output)
        if match.group("end"):
            continue  # <testcase .../> has no properties
        close = xml.find(_CLOSE, match.end())
        body = xml[match.end(): close if close >= 0 else len(xml)]
        wanted = None
        for prop_match in _PROPERTY.finditer(body):
            attrs = _attrs(prop_match.group("attrs"))
            if attrs.get("name") == prop and attrs.get("value"):
                wanted = attrs["value"]
                break
        if wanted is None:
            continue
        start_tag = match.group(0)
        name_attr = _NAME_ATTR.search(start_tag)
        if name_attr:
            before, after = start_tag[: name_attr.start()], start_tag[name_attr.end():]
            new_tag = f'{before}name="{wanted}"{after}'
        else:
            new_tag = start_tag.replace("<testcase", f'<testcase name="{wanted}"', 1)
        if new_tag != start_tag:
            changed += 1
        out.append(xml[pos: match.start()])
        out.append(new_tag)
        pos = match.end()
    out.append(xml[pos:])
    return "".join(out), changed


def rename_testcases(path: Path | None, prop: str = PROP_JUNIT_NAME) -> int:
    """Rename the testcases of the JUnit file at `path` in place; returns how many changed.

    A missing path (no --junitxml, or pytest failed before writing) is not an error: 0.
    The file is rewritten only when something changed, and a second pass changes nothing.
    """
    if path is None or not path.is_file():
        return 0
    with path.open(encoding="utf-8", newline="") as handle:
        text = handle.read()
    new_text, changed = rename_testcases_in_text(text, prop)
    if new_text != text:
        with path.open("w", encoding="utf-8", newline="") as handle:
            handle.write(new_text)
    return changed


def evidence_ref(junit_name: str, prefix: str = "junit.xml#") -> str:
    """A PRODUCT.yaml evidence entry pointing at a testcase, e.g. `junit.xml#TestX/Y`."""
    return f"{prefix}{junit_name}"


def cncf_evidence_prefix(version: str, product: str) -> str:
    """CNCF's 1.37 convention for attached results: `file://vX.Y/<product>/junit.xml#`."""
    slug = re.sub(r"[^a-z0-9.-]+", "-", product.lower()).strip("-") or "product"
    return f"file://v{version}/{slug}/junit.xml#"
