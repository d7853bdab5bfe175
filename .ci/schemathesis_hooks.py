"""schemathesis hooks for .ci/schemathesis.sh: bodies in the media types schemathesis cannot write itself."""
import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    """One JSON value per line, as `POST /api/ingest/bins` takes NDJSON (an array is one line per item)."""
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(item) + "\n" for item in items).encode()
