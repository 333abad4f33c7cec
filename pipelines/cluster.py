"""`python pipelines/cluster.py --help`: same as `facenet-tf cluster`; see facenet_tf.cli."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from facenet_tf.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["cluster", *sys.argv[1:]]))
