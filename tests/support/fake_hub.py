"""A Hugging Face hub endpoint for tests/hub.rs: serves the files of one folder as the repository
ORG/NAME at one commit (the repository API and `resolve` with byte ranges, etag and commit
headers, as the hub does). Usage: fake_hub.py FOLDER REPO COMMIT PORT_FILE."""
import hashlib
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

folder, repo, commit, port_file = sys.argv[1:5]
files = sorted(os.listdir(folder))


class Hub(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path.startswith(f"/api/models/{repo}/revision/"):
            body = json.dumps({"sha": commit, "siblings": [{"rfilename": f} for f in files]})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())
            return
        prefix = f"/{repo}/resolve/"
        name = self.path[len(prefix):].split("/", 1)[-1] if self.path.startswith(prefix) else ""
        if name not in files:
            self.send_error(404)
            return
        data = open(os.path.join(folder, name), "rb").read()
        start, end = 0, len(data) - 1
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            a, b = rng[6:].split("-")
            start, end = int(a), min(int(b) if b else end, end)
        chunk = data[start : end + 1]
        self.send_response(206 if rng else 200)
        self.send_header("ETag", '"%s"' % hashlib.sha256(data).hexdigest())
        self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        self.wfile.write(chunk)


server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
