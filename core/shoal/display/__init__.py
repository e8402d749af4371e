"""How shoal shows itself to a person: progress while it waits, and objects that display
themselves in a notebook.

* :mod:`shoal.display.surface`: where output goes (a Jupyter kernel with or without ipywidgets,
  a terminal, or a log file);
* :mod:`shoal.display.progress`: one progress display per surface;
* :mod:`shoal.display.html`: the HTML that jobs, runs, pools and listings show in a notebook.

Runs on the driver.
"""
