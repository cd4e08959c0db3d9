/* The --help text of every verb: src/cli/help/VERB.txt, embedded at build time
 * by tools/embed_text.py (src/cli/meson.build), so that the texts are read and
 * edited as text, beside the code that parses the options they describe. */
#ifndef CLDETR_CLI_HELP_H
#define CLDETR_CLI_HELP_H

typedef struct { const char *file; const char *text; } cli_help_text;
extern const cli_help_text cli_help_texts[];   /* "VERB.txt", ends with {NULL, NULL} */

/* The help text of a verb, or NULL. */
const char *cli_help(const char *verb);

#endif
