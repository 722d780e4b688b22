"""``python -m stashhog.launcher``, which is what ``make run`` runs."""

import sys

from stashhog.launcher import main

sys.exit(main())
