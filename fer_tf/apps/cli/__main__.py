"""`python -m fer_tf.apps.cli`."""
import sys

from fer_tf.apps.cli import main

sys.exit(main())
