"""PlateLens engine: datasets, synthetic plates, CTC models, training, scoring and error analysis.

Nothing below this package imports streamlit; the dashboard in ``app/`` and ``pages/`` wraps it.
"""

__version__ = "0.1.0"
