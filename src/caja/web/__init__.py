"""What payers see: pages, payment slips and barcode images."""
