"""Pure builders of the construction: codes and layouts, the switched feature map, the weights."""
from .network import Construction, Design, build  # noqa: F401
