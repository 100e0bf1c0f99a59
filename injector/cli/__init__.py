"""Command-line entry points: vcl-inject, vcl-injector (webhook), and friends."""
