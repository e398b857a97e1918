"""The HTTP edges: parse, authenticate, call one service, render."""
