"""One QGIS process for all the demo's algorithm runs.

QGIS 3.22's qgis_process runs one algorithm per call and spends ~4 s of CPU starting up each
time; the demo makes ~30 runs. This runner does what qgis_process does for each request
(``checkParameterValues``, then ``QgsProcessingAlgorithm.run``) in one process that stays up.

Protocol: one JSON request per line on stdin, ``{"alg": id or .model3 path, "params": {...}}``;
one JSON reply per line on the file descriptor given as argv[1], ``{"ok": true, "results":
{...}}`` or ``{"ok": false, "error": "..."}``. Anything the algorithms print goes to stderr.
"""

import json
import os
import sys


HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "scripts"))


def main(reply_fd):
    replies = os.fdopen(reply_fd, "w")
    os.dup2(2, 1)  # stray prints must not mix with the replies
    import qgis_session
    from qgis.core import QgsProcessingFeedback, QgsProcessingModelAlgorithm

    app, registry, provider = qgis_session.start()

    class Feedback(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.lines = []

        def reportError(self, error, fatalError=False):  # noqa: N802 (QGIS's names)
            self.lines.append(error)

    for line in sys.stdin:
        request = json.loads(line)
        name = request["alg"]
        if name.endswith(".model3"):
            alg = QgsProcessingModelAlgorithm()
            alg.fromFile(name)
        else:
            alg = registry.createAlgorithmById(name)
        if alg is None:
            reply = {"ok": False, "error": f"algorithm {name} not found"}
        else:
            feedback = Feedback()
            ok, outputs, message = qgis_session.run(alg, request["params"], feedback)
            message = message or "\n".join(feedback.lines)
            reply = ({"ok": True, "results": outputs} if ok else
                     {"ok": False, "error": message or f"{name} failed"})
        replies.write(json.dumps(reply, default=str) + "\n")
        replies.flush()
    qgis_session.stop(app, registry, provider)


if __name__ == "__main__":
    main(int(sys.argv[1]))
