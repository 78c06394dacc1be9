"""Server-sent events: the one wrapper every streaming route returns. The API modules' logic yields
``data: …`` events as an async generator and knows nothing of HTTP; the route hands it to ``sse``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse


def sse(events: AsyncIterator[str]) -> StreamingResponse:
    """A server-sent-event stream; a failure after the first byte becomes a last ``error`` event
    (TGI's shape), since the status line has gone out already."""

    async def guarded() -> AsyncIterator[str]:
        try:
            async for event in events:
                yield event
        except RuntimeError as e:
            yield f"data:{json.dumps({'error': str(e), 'error_type': 'generation'})}\n\n"

    return StreamingResponse(guarded(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
