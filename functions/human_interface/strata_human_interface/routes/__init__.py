"""HTTP routes of L10: the console's pages and assets, and the data views behind them."""
