"""An RTSP server for rehearsing a watch without a camera: GStreamer's RTSP server (Debian's
``gir1.2-gst-rtsp-server-1.0`` and ``python3-gi``), run by the system Python that has PyGObject
(``serve.RtspServer`` starts it; never imported by vadetective itself).

    /usr/bin/python3 rtsp_gst.py PORT MOUNT CLIP.mkv

serves ``rtsp://127.0.0.1:PORT/MOUNT``: each client session plays the H.264 clip (encoded
beforehand by FFmpeg) from its start at real-time speed, as a camera would deliver it. It prints
``ready`` on stdout once it listens, and stops on SIGTERM/SIGINT.
"""

import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    port, mount, clip = sys.argv[1], sys.argv[2], sys.argv[3]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( filesrc location="{clip}" ! matroskademux ! h264parse '
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    factory.set_shared(False)
    server.get_mount_points().add_factory(f"/{mount}", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{port}", file=sys.stderr, flush=True)
        sys.exit(1)
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print("ready", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
