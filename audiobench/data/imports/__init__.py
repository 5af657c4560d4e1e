"""Bringing clips in from elsewhere than a download: other audiobench roots, copies, a folder of your own."""
