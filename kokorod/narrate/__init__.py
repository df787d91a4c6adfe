"""Long text from the command line (``kokorod say -f``): a text or Markdown file
read line by line (reader), cut and spoken segment by segment (job, through a
local_renderer or a remote_renderer), written as it goes (writer, outputs) with
captions, word times and chapters, under a progress bar (progress). command
is the glue the CLI calls; nothing here is imported by the daemon."""
