"""Server-rendered pages: the seller's proof page at /rifts/{id} and the console at /ops."""
