"""wattfleet component package."""
