"""Schemathesis hooks for `cargo xtask contract`.

An image upload carries `X-Content-SHA256`, the sha256 of its body: a relation between two
parts of the request that OpenAPI cannot state. Without this hook every generated upload with a
well-formed header would carry the wrong hash and be refused (400), so the 201 path and the
stateful POD -> image links would never run. A header that is not a well-formed hash (a negative
case) is left as generated, so the refusal of bad headers is still tested.
"""

import hashlib
import re

import schemathesis

SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


@schemathesis.hook
def before_call(context, case, kwargs):
    if not case.operation.path.endswith("/images"):
        return
    # Generated binary bodies arrive wrapped (schemathesis' `Binary`, bytes in `.data`).
    body = getattr(case.body, "data", case.body)
    if isinstance(body, (bytes, bytearray)):
        headers = case.headers or {}
        declared = headers.get("X-Content-SHA256")
        if isinstance(declared, str) and SHA256_HEX.match(declared):
            headers["X-Content-SHA256"] = hashlib.sha256(body).hexdigest()
            case.headers = headers
