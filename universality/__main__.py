"""python -m universality ... is verify-construction ..."""
import sys

from .cli import main

sys.exit(main())
