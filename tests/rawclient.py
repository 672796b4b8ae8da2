"""A browser session without a browser: Streamlit's websocket protocol spoken directly.

What a hostile visitor can send is whatever the protocol allows, not what the page's
widgets offer: a "clear cache" message, widget values, upload requests. `RawSession` sends
those BackMsg protobufs to a running server (`browser.appdriver.start_server`) and reads the
ForwardMsgs back, so tests can reproduce what such a client does.
"""

from __future__ import annotations

import time
import urllib.request
import uuid
from dataclasses import dataclass, field

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.sync.client import connect

RUN_TIMEOUT = 180.0  # one script run on a busy 2-core machine


@dataclass
class RunResult:
    """What one script run sent back: its elements, by kind."""

    elements: list = field(default_factory=list)  # Element protobufs, in order

    def of_kind(self, kind: str) -> list:
        return [getattr(e, kind) for e in self.elements if e.WhichOneof("type") == kind]

    def alerts(self) -> list[str]:
        return [alert.body for alert in self.of_kind("alert")]


class RawSession:
    """One websocket connection to the app: a browser session of its own."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._connection = connect(base_url.replace("http://", "ws://") + "/_stcore/stream", subprotocols=["streamlit"],
                                   max_size=None, open_timeout=60)  # fmt: skip
        self.ws = self._connection.__enter__()
        self.session_id = ""
        self.last_file_id = ""
        self.widgets: dict[str, object] = {}  # label -> the widget's protobuf, from the last run

    def close(self) -> None:
        self._connection.__exit__(None, None, None)

    def __enter__(self) -> RawSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, msg: BackMsg) -> None:
        self.ws.send(msg.SerializeToString())

    def clear_cache(self) -> None:
        """The message behind the developer menu's "Clear cache" (any client may send it)."""
        msg = BackMsg()
        msg.clear_cache = True
        self.send(msg)

    def rerun(self, strings: dict[str, str] | None = None, page: str = "", *, query: str = "",
              files: dict[str, list[tuple[str, str, int]]] | None = None) -> RunResult:  # fmt: skip
        """Run the script (on ``page``, a page's URL path, with the URL's ``query``) with
        widget values by label: ``strings`` (a text box's text, a radio's option), ``files``
        (an uploader's (file id, name, size) per file, as uploaded with `upload`); wait for
        the run to end."""
        msg = BackMsg()
        msg.rerun_script.query_string = query
        msg.rerun_script.page_name = page
        widgets = msg.rerun_script.widget_states.widgets
        for label, value in (strings or {}).items():
            widgets.add(id=self.widgets[label].id, string_value=value)
        for label, uploaded in (files or {}).items():
            state = widgets.add(id=self.widgets[label].id)
            for file_id, name, size in uploaded:
                state.file_uploader_state_value.uploaded_file_info.add(file_id=file_id, name=name, size=size)
        self.send(msg)
        return self.read_run()

    def read_run(self) -> RunResult:
        """ForwardMsgs until the script run finishes."""
        result = RunResult()
        while True:
            fwd = ForwardMsg()
            fwd.ParseFromString(self.ws.recv(timeout=RUN_TIMEOUT))
            kind = fwd.WhichOneof("type")
            if kind == "new_session":
                self.session_id = fwd.new_session.initialize.session_id
            elif kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                element = fwd.delta.new_element
                result.elements.append(element)
                widget = getattr(element, element.WhichOneof("type"))
                if hasattr(widget, "label") and hasattr(widget, "id"):
                    self.widgets[widget.label] = widget
            elif kind == "script_finished":
                return result

    def upload(self, data: bytes, name: str = "stories.txt") -> int:
        """Put a file in this session's upload store, as the file uploader widget would
        (one file_urls_request, then an HTTP PUT with the XSRF cookie a browser would hold);
        returns the PUT's status code. The file's id is `last_file_id` after."""
        msg = BackMsg()
        msg.file_urls_request.request_id = uuid.uuid4().hex
        msg.file_urls_request.file_names.append(name)
        msg.file_urls_request.session_id = self.session_id
        self.send(msg)
        while True:
            fwd = ForwardMsg()
            fwd.ParseFromString(self.ws.recv(timeout=RUN_TIMEOUT))
            if fwd.WhichOneof("type") == "file_urls_response":
                url = fwd.file_urls_response.file_urls[0].upload_url
                self.last_file_id = fwd.file_urls_response.file_urls[0].file_id
                break
        with urllib.request.urlopen(self.base_url + "/_stcore/health", timeout=30) as reply:  # sets the XSRF cookie
            cookie = reply.headers.get("Set-Cookie", "").split(";", 1)[0]
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                f"Content-Type: text/plain\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()  # fmt: skip
        request = urllib.request.Request(
            self.base_url + url if url.startswith("/") else url, data=body, method="PUT",
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}", "Cookie": cookie,
                     "X-Xsrftoken": cookie.split("=", 1)[-1]},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                return reply.status
        except urllib.error.HTTPError as exc:
            return exc.code


def uploaded_bytes(base_url: str) -> int:
    """Bytes of uploaded files the server holds, all sessions together (Streamlit's own
    ``/_stcore/metrics``; no line at all when it holds none). Streamlit computes this
    figure at most every few seconds: see `uploaded_bytes_become`."""
    with urllib.request.urlopen(base_url + "/_stcore/metrics", timeout=30) as reply:
        text = reply.read().decode()
    return sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines() if "UploadedFileManager" in line)


def uploaded_bytes_become(base_url: str, expected: int, patience: float = 60.0) -> int:
    """`uploaded_bytes` once it equals ``expected`` (its figure is refreshed every few seconds), or
    the last figure seen when ``patience`` seconds pass first."""
    deadline = time.monotonic() + patience
    while (seen := uploaded_bytes(base_url)) != expected and time.monotonic() < deadline:
        time.sleep(0.5)
    return seen
