import sys
from pathlib import Path

# tests/simutil.py and friends are imported as plain modules
sys.path.insert(0, str(Path(__file__).parent))
