"""The names that the data readers accept as choices: feed formats and label rules. Torch-free, so that the
``dilated`` command offers them in ``--help`` without importing the readers."""

BOOK_FORMATS = ("databento-mbo", "databento-mbp10", "binance", "bitstamp", "lobster")  # dilated data convert --format
GAP_POLICIES = ("raise", "truncate")  # binance_book(gaps=...): what a sequence gap in depth diffs does
SMOOTHINGS = ("future", "past", "tlob")  # label rules of books (dilated.data.LabelRule)
THRESHOLD_UNITS = ("fraction", "ticks", "spread")  # what a book label threshold counts (dilated.data.LabelRule)
# model inputs of a book (dilated.data.book_inputs)
REPRESENTATIONS = ("raw", "stationary", "stationary_levels", "order_flow")
