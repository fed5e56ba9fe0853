/*
 * lua/main.c -- the `torsh` interpreter executable.
 *
 * Provides main(): the one binary a user runs.
 *   torsh                     REPL on a terminal; otherwise runs stdin as one chunk
 *   torsh FILE.lua args...    runs a script (global `arg`, and `...` in the chunk)
 *   torsh COMMAND args...     runs <scripts>/COMMAND.lua the same way
 *   torsh -e CODE, -i, -      runs CODE / enters the REPL / runs stdin
 *   torsh --version, --help   (the help lists the commands found in <scripts>)
 *
 * Uses: Lua 5.4 (lua.h, lauxlib.h, lualib.h); luaopen_torsh() from the
 * binding library; GNU readline + history for the REPL; POSIX sigaction,
 * isatty, stat, opendir/readdir, getline.
 *
 * Shape (after Lua's own lua.c): all the work happens in one protected call
 * (run_main); every chunk runs under lua_pcall with a message handler that
 * appends a traceback (chunk_call); a SIGINT while a chunk runs sets a Lua
 * hook that raises "interrupted!" at the next opportunity, and SIGINT is back
 * to its default action whenever no chunk runs and no prompt waits.
 *
 * Build-time macros (string literals): TORSH_STDLIB_DIR, TORSH_SCRIPTS_DIR,
 * TORSH_VERSION_STRING.  Environment: TORSH_STDLIB, TORSH_SCRIPTS (override
 * the two folders), TORSH_HISTORY (REPL history file, default
 * ~/.torsh_history), HOME.
 *
 * Exit status: 0 on success, 1 when a chunk raises an error, 2 on a usage
 * error; a script's os.exit(n) exits with n.
 */

#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* sigaction, getline, strdup, opendir */
#endif

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

#ifndef TORSH_STDLIB_DIR
#define TORSH_STDLIB_DIR "stdlib"
#endif
#ifndef TORSH_SCRIPTS_DIR
#define TORSH_SCRIPTS_DIR "scripts"
#endif
#ifndef TORSH_VERSION_STRING
#define TORSH_VERSION_STRING "0.1.0"
#endif

#define PROGNAME "torsh"
#define EXIT_USAGE 2
#define PATH_BUF 4096

#define PROMPT_FIRST "> "
#define PROMPT_MORE ">> "
#define REPL_CHUNKNAME "=stdin"
#define REPL_HISTORY_MAX 1000
#define EOF_MARK "<eof>" /* the tail of "statement not finished" errors */

/* REPL reader results; negative so they never clash with LUA_OK, LUA_ERR* */
#define REPL_QUIT (-1)    /* end of input or .exit */
#define REPL_SKIP (-2)    /* a dot command ran; nothing to execute */
#define REPL_RESTART (-3) /* Ctrl-C dropped a half-typed statement */

/* The opener of the binding library (the other files in lua/). */
extern int luaopen_torsh(lua_State *L);

/*
 * Process-wide state, kept only because signal handlers receive nothing but
 * the signal number:
 *   sigint_target  the state whose running chunk a SIGINT interrupts; set by
 *                  chunk_call right before it installs on_sigint_in_chunk.
 *   prompt_sigint  SIGINT_NONE / _PENDING / _HANDLED: set to PENDING by
 *                  on_sigint_at_prompt while readline waits, moved to HANDLED
 *                  by the readline event hook once the line is cleared, and
 *                  read and reset by repl_read_line.
 */
enum { SIGINT_NONE, SIGINT_PENDING, SIGINT_HANDLED };
static lua_State *volatile sigint_target = NULL;
static volatile sig_atomic_t prompt_sigint = SIGINT_NONE;

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static const char *env_or(const char *name, const char *fallback)
{
    const char *value = getenv(name);
    return (value != NULL && value[0] != '\0') ? value : fallback;
}

static const char *stdlib_dir(void)
{
    return env_or("TORSH_STDLIB", TORSH_STDLIB_DIR);
}

static const char *scripts_dir(void)
{
    return env_or("TORSH_SCRIPTS", TORSH_SCRIPTS_DIR);
}

static int is_regular_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int is_blank(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    return *s == '\0';
}

/* True when `line` is `word` (after blanks), followed by a blank or nothing. */
static int starts_with_word(const char *line, const char *word)
{
    size_t n = strlen(word);
    while (isspace((unsigned char)*line))
        line++;
    return strncmp(line, word, n) == 0 &&
           (line[n] == '\0' || isspace((unsigned char)line[n]));
}

static void print_error(const char *msg)
{
    fflush(stdout);
    fprintf(stderr, "%s: %s\n", PROGNAME, msg);
    fflush(stderr);
}

/* Prints the message on top of the stack (if status is an error) and pops it. */
static int report(lua_State *L, int status)
{
    if (status != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        print_error(msg != NULL ? msg : "(error object is not a string)");
        lua_pop(L, 1);
    }
    return status;
}

/* ------------------------------------------------------------------ */
/* SIGINT: a Lua error while a chunk runs, a cleared line at a prompt  */
/* ------------------------------------------------------------------ */

/* No SA_RESTART: readline must see read() fail with EINTR. */
static void sigint_set(void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGINT, &sa, NULL);
}

/* Runs inside Lua at the first hook event after a SIGINT. */
static void interrupt_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted!");
}

/*
 * Signal handler while a chunk runs. Doing Lua work here is not allowed, so
 * it only arms a hook (lua_sethook is safe to call from a signal handler);
 * the hook raises the error on the Lua side. A second Ctrl-C before the hook
 * fires (e.g. stuck in a long C call) gets the default action and ends the
 * process.
 */
static void on_sigint_in_chunk(int sig)
{
    int mask = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
    (void)sig;
    sigint_set(SIG_DFL);
    lua_sethook(sigint_target, interrupt_hook, mask, 1);
}

/* Signal handler while readline waits; repl_on_rl_signal does the rest. */
static void on_sigint_at_prompt(int sig)
{
    (void)sig;
    prompt_sigint = SIGINT_PENDING;
}

/* ------------------------------------------------------------------ */
/* Running chunks                                                      */
/* ------------------------------------------------------------------ */

/* Message handler: turns the error object into a string plus a traceback. */
static int traceback_handler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)",
                                  luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/*
 * Calls the function below `nargs` arguments like lua_pcall, with the
 * traceback handler and with Ctrl-C turned into a Lua error meanwhile.
 */
static int chunk_call(lua_State *L, int nargs, int nresults)
{
    int handler = lua_gettop(L) - nargs; /* where the function is now */
    int status;
    lua_pushcfunction(L, traceback_handler);
    lua_insert(L, handler);
    sigint_target = L;
    sigint_set(on_sigint_in_chunk);
    status = lua_pcall(L, nargs, nresults, handler);
    sigint_set(SIG_DFL);
    if (lua_gethook(L) == interrupt_hook) /* Ctrl-C came too late to fire */
        lua_sethook(L, NULL, 0, 0);
    lua_remove(L, handler);
    return status;
}

static int run_string(lua_State *L, const char *code, const char *chunkname)
{
    int status = luaL_loadbuffer(L, code, strlen(code), chunkname);
    if (status == LUA_OK)
        status = chunk_call(L, 0, 0);
    return report(L, status);
}

/* Runs the file at `path` (NULL: stdin), passing args[0..nargs-1] as `...`. */
static int run_file(lua_State *L, const char *path, char **args, int nargs)
{
    int status = luaL_loadfile(L, path);
    if (status == LUA_OK) {
        int i;
        luaL_checkstack(L, nargs, "too many arguments to script");
        for (i = 0; i < nargs; i++)
            lua_pushstring(L, args[i]);
        status = chunk_call(L, nargs, 0);
    }
    return report(L, status);
}

/* ------------------------------------------------------------------ */
/* Command line                                                        */
/* ------------------------------------------------------------------ */

struct options {
    int argc;
    char **argv;
    int script;       /* argv index of the script or command; 0 if none */
    int interactive;  /* -i */
    int has_exec;     /* at least one -e */
    int show_version; /* --version / -v */
    int show_help;    /* --help / -h */
    const char *script_path; /* what to load; NULL means stdin */
    char command_path[PATH_BUF]; /* <scripts>/COMMAND.lua when a command */
};

static void print_usage_hint(void)
{
    fprintf(stderr, "usage: %s [options] [script [args...]] | %s COMMAND "
            "[args...]  (see %s --help)\n", PROGNAME, PROGNAME, PROGNAME);
}

static int usage_error(const char *what, const char *option)
{
    fprintf(stderr, "%s: %s '%s'\n", PROGNAME, what, option);
    print_usage_hint();
    return EXIT_USAGE;
}

/*
 * Reads the options before the script name. Returns 0, or EXIT_USAGE after
 * printing a message. Options after the script belong to the script.
 */
static int parse_options(struct options *o)
{
    int i;
    for (i = 1; i < o->argc; i++) {
        const char *a = o->argv[i];
        if (a[0] != '-' || strcmp(a, "-") == 0)
            break; /* the script (or stdin) */
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "--version") == 0 || strcmp(a, "-v") == 0)
            o->show_version = 1;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            o->show_help = 1;
        else if (strcmp(a, "-i") == 0)
            o->interactive = 1;
        else if (strncmp(a, "-e", 2) == 0) {
            if (a[2] == '\0' && ++i >= o->argc)
                return usage_error("missing code after", "-e");
            o->has_exec = 1;
        } else
            return usage_error("unrecognized option", a);
    }
    o->script = (i < o->argc) ? i : 0;
    return 0;
}

/* A bare word that is no file: the name of a command in <scripts>. */
static int looks_like_command(const char *name)
{
    return name[0] != '\0' && strchr(name, '/') == NULL &&
           !ends_with(name, ".lua") && !is_regular_file(name);
}

/*
 * Decides what argv[o->script] names: stdin ("-"), a script file, or a
 * command. Returns 0, or EXIT_USAGE after printing that a command is unknown.
 */
static int resolve_script(struct options *o)
{
    const char *name = o->argv[o->script];
    int n;
    if (strcmp(name, "-") == 0 && strcmp(o->argv[o->script - 1], "--") != 0) {
        o->script_path = NULL;
        return 0;
    }
    if (!looks_like_command(name)) {
        o->script_path = name;
        return 0;
    }
    n = snprintf(o->command_path, sizeof o->command_path, "%s/%s.lua",
                 scripts_dir(), name);
    if (n < 0 || (size_t)n >= sizeof o->command_path ||
        !is_regular_file(o->command_path)) {
        fprintf(stderr, "%s: unknown command '%s' (see %s --help)\n",
                PROGNAME, name, PROGNAME);
        return EXIT_USAGE;
    }
    o->script_path = o->command_path;
    return 0;
}

static int script_is_command(const struct options *o)
{
    return o->script > 0 && o->script_path == o->command_path;
}

static void print_version(void)
{
    printf("%s %s\n%s\n", PROGNAME, TORSH_VERSION_STRING, LUA_RELEASE);
}

/* ------------------------------------------------------------------ */
/* --help and its list of commands                                     */
/* ------------------------------------------------------------------ */

struct name_list {
    char **names;
    size_t count, cap;
};

static int name_list_add(struct name_list *list, const char *name)
{
    char *copy;
    if (list->count == list->cap) {
        size_t cap = list->cap ? 2 * list->cap : 16;
        char **grown = realloc(list->names, cap * sizeof *grown);
        if (grown == NULL)
            return -1;
        list->names = grown;
        list->cap = cap;
    }
    copy = strdup(name);
    if (copy == NULL)
        return -1;
    list->names[list->count++] = copy;
    return 0;
}

static void name_list_free(struct name_list *list)
{
    size_t i;
    for (i = 0; i < list->count; i++)
        free(list->names[i]);
    free(list->names);
    list->names = NULL;
    list->count = list->cap = 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Fills `list` with the sorted "*.lua" file names in `dir`; -1 if unreadable. */
static int list_scripts(const char *dir, struct name_list *list)
{
    DIR *d = opendir(dir);
    struct dirent *entry;
    char path[PATH_BUF];
    if (d == NULL)
        return -1;
    while ((entry = readdir(d)) != NULL) {
        const char *name = entry->d_name;
        int n;
        if (name[0] == '.' || !ends_with(name, ".lua"))
            continue;
        n = snprintf(path, sizeof path, "%s/%s", dir, name);
        if (n < 0 || (size_t)n >= sizeof path || !is_regular_file(path))
            continue;
        if (name_list_add(list, name) != 0)
            break; /* out of memory: list what we have */
    }
    closedir(d);
    if (list->count > 1)
        qsort(list->names, list->count, sizeof *list->names, compare_names);
    return 0;
}

/* Copies into `buf` the text after "-- " on the file's first line, or "". */
static void read_description(const char *path, char *buf, size_t size)
{
    char line[256];
    FILE *f = fopen(path, "r");
    buf[0] = '\0';
    if (f == NULL)
        return;
    if (fgets(line, sizeof line, f) != NULL && strncmp(line, "-- ", 3) == 0) {
        line[strcspn(line, "\r\n")] = '\0';
        snprintf(buf, size, "%s", line + 3);
    }
    fclose(f);
}

static void print_commands(FILE *out)
{
    const char *dir = scripts_dir();
    struct name_list list = {NULL, 0, 0};
    size_t i;
    fprintf(out, "\ncommands (from %s):\n", dir);
    if (list_scripts(dir, &list) != 0) {
        fprintf(out, "  (cannot read %s: %s)\n", dir, strerror(errno));
        return;
    }
    if (list.count == 0)
        fprintf(out, "  (none)\n");
    for (i = 0; i < list.count; i++) {
        const char *name = list.names[i];
        int len = (int)(strlen(name) - strlen(".lua"));
        char path[PATH_BUF], desc[256];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        read_description(path, desc, sizeof desc);
        fprintf(out, "  %-22.*s %s\n", len, name, desc);
    }
    name_list_free(&list);
}

static void print_help(FILE *out)
{
    fprintf(out,
        "usage: %s [options] [script [args...]]\n"
        "       %s COMMAND [args...]\n"
        "\n"
        "  %-22s start the REPL when stdin is a terminal,\n"
        "  %-22s else run stdin as one chunk\n"
        "  %-22s run a script: arg[0] is FILE.lua,\n"
        "  %-22s arg[1..] and ... are the args\n"
        "  %-22s run the script read from stdin\n"
        "  %-22s run %s/COMMAND.lua\n"
        "\n"
        "options:\n"
        "  -e CODE                run CODE (repeatable; before the script)\n"
        "  -i                     enter the REPL after the rest\n"
        "  --                     stop handling options\n"
        "  -v, --version          print the version and exit\n"
        "  -h, --help             print this help and exit\n"
        "\n"
        "environment:\n"
        "  TORSH_STDLIB           Lua library folder (now %s)\n"
        "  TORSH_SCRIPTS          command scripts folder (now %s)\n"
        "  TORSH_HISTORY          REPL history (default ~/.torsh_history)\n",
        PROGNAME, PROGNAME, PROGNAME, "", PROGNAME " FILE.lua args...", "",
        PROGNAME " -", PROGNAME " COMMAND args...", scripts_dir(),
        stdlib_dir(), scripts_dir());
    print_commands(out);
}

/* ------------------------------------------------------------------ */
/* The REPL: reading lines                                             */
/* ------------------------------------------------------------------ */

struct repl {
    int use_readline;       /* stdin is a terminal */
    const char *history;    /* history file, or NULL for none */
    char history_buf[PATH_BUF];
};

/*
 * readline's signal event hook: runs inside readline after a signal broke
 * its read(). On our Ctrl-C it drops the typed text and starts a fresh
 * "> " line, the way a shell does.
 */
static int repl_on_rl_signal(void)
{
    if (prompt_sigint == SIGINT_PENDING) {
        prompt_sigint = SIGINT_HANDLED;
        fputs("^C", rl_outstream);
        rl_crlf();
        rl_replace_line("", 1);
        rl_set_prompt(PROMPT_FIRST);
        rl_on_new_line();
        rl_redisplay();
    }
    return 0;
}

static const char *history_path(char *buf, size_t size)
{
    const char *path = getenv("TORSH_HISTORY");
    const char *home = getenv("HOME");
    int n;
    if (path != NULL && path[0] != '\0')
        return path;
    if (home == NULL || home[0] == '\0')
        return NULL;
    n = snprintf(buf, size, "%s/.torsh_history", home);
    return (n < 0 || (size_t)n >= size) ? NULL : buf;
}

static void history_open(const char *path)
{
    if (read_history(path) == ENOENT)
        write_history(path); /* create it, so append_history can add to it */
    history_truncate_file(path, REPL_HISTORY_MAX);
}

static void repl_open(struct repl *r)
{
    r->use_readline = isatty(STDIN_FILENO);
    r->history = NULL;
    if (!r->use_readline)
        return;
    rl_readline_name = PROGNAME;
    rl_catch_signals = 0; /* our handler, only while readline waits */
    rl_signal_event_hook = repl_on_rl_signal;
    using_history();
    stifle_history(REPL_HISTORY_MAX);
    history_comment_char = '#';    /* timestamps ("#<time>" lines) in */
    history_write_timestamps = 1;  /* the file let multi-line entries */
    history_multiline_entries = 1; /* come back as one entry */
    r->history = history_path(r->history_buf, sizeof r->history_buf);
    if (r->history != NULL)
        history_open(r->history);
}

static void repl_close(const struct repl *r)
{
    if (r->history != NULL)
        history_truncate_file(r->history, REPL_HISTORY_MAX);
}

static void history_add(const struct repl *r, const char *entry)
{
    if (!r->use_readline || entry == NULL || is_blank(entry))
        return;
    add_history(entry);
    if (r->history != NULL)
        append_history(1, r->history);
}

/* A line from a stream that is not a terminal (REPL forced with -i). */
static char *read_plain_line(const char *prompt)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    fputs(prompt, stdout);
    fflush(stdout);
    n = getline(&line, &cap, stdin);
    if (n < 0) {
        free(line);
        return NULL;
    }
    if (n > 0 && line[n - 1] == '\n')
        line[n - 1] = '\0';
    return line;
}

/*
 * Reads one line with `prompt`. Returns a malloc'd string without the
 * newline, or NULL at end of input. Sets *interrupted when Ctrl-C was
 * pressed while waiting: the line returned then starts a new statement.
 */
static char *repl_read_line(const struct repl *r, const char *prompt,
                            int *interrupted)
{
    char *line;
    *interrupted = 0;
    if (!r->use_readline)
        return read_plain_line(prompt);
    fflush(stdout);
    prompt_sigint = SIGINT_NONE;
    sigint_set(on_sigint_at_prompt);
    line = readline(prompt);
    sigint_set(SIG_DFL);
    *interrupted = (prompt_sigint != SIGINT_NONE);
    if (line == NULL)
        fputs("\n", stdout); /* leave the shell prompt on a fresh line */
    return line;
}

/* ------------------------------------------------------------------ */
/* The REPL: compiling statements                                      */
/* ------------------------------------------------------------------ */

static int is_incomplete(lua_State *L, int status)
{
    size_t len, mark = strlen(EOF_MARK);
    const char *msg;
    if (status != LUA_ERRSYNTAX)
        return 0;
    msg = lua_tolstring(L, -1, &len);
    return msg != NULL && len >= mark && strcmp(msg + len - mark, EOF_MARK) == 0;
}

/* Tries the source on top as "return <source>"; on success pushes the function. */
static int compile_expression(lua_State *L)
{
    const char *code = lua_pushfstring(L, "return %s", lua_tostring(L, -1));
    int status = luaL_loadbuffer(L, code, strlen(code), REPL_CHUNKNAME);
    lua_remove(L, -2); /* the "return ..." text */
    if (status != LUA_OK)
        lua_pop(L, 1); /* its error: the statement form will report better */
    return status;
}

/*
 * Compiles the source on top as a statement, reading continuation lines
 * while it is unfinished; the source on top grows with each line. Pushes the
 * function or the error message above it. Returns REPL_RESTART with the new
 * first line in *restart when Ctrl-C dropped the statement, REPL_QUIT (and
 * pushes nothing) when input ends right after such a Ctrl-C.
 */
static int compile_statement(lua_State *L, const struct repl *r, char **restart)
{
    for (;;) {
        size_t len;
        const char *src = lua_tolstring(L, -1, &len);
        int status = luaL_loadbuffer(L, src, len, REPL_CHUNKNAME);
        int interrupted;
        char *more;
        if (!is_incomplete(L, status))
            return status;
        more = repl_read_line(r, PROMPT_MORE, &interrupted);
        if (more == NULL && !interrupted)
            return status; /* input ended mid-statement: report it */
        lua_pop(L, 1);     /* the "<eof>" message */
        if (more == NULL)
            return REPL_QUIT;
        if (interrupted) {
            *restart = more;
            return REPL_RESTART;
        }
        lua_pushliteral(L, "\n");
        lua_pushstring(L, more);
        free(more);
        lua_concat(L, 3); /* source .. "\n" .. more */
    }
}

/*
 * Compiles a statement that starts with *line (which it frees). Leaves the
 * function or the error message on top; history gets the whole source.
 */
static int repl_compile(lua_State *L, const struct repl *r, char **line)
{
    int status;
    lua_pushstring(L, *line);
    free(*line);
    *line = NULL;
    status = compile_expression(L);
    if (status != LUA_OK)
        status = compile_statement(L, r, line);
    if (status == REPL_RESTART || status == REPL_QUIT) {
        lua_pop(L, 1); /* the dropped source */
        return status;
    }
    history_add(r, lua_tostring(L, -2));
    lua_remove(L, -2);
    return status;
}

static void repl_print_help(const struct repl *r)
{
    fputs(
        "torsh REPL: type Lua statements or expressions.\n"
        "  the values of an expression are printed; tensors print like\n"
        "  PyTorch: tensor([[1., 2.], ...])\n"
        "  an unfinished statement continues on the next line (prompt \">>\")\n"
        "  torsh is the global `torsh` (also require \"torsh\")\n"
        "  Ctrl-C       drop the current line, or interrupt running code\n"
        "  Ctrl-D, .exit or os.exit()   leave\n"
        "  .help        this text\n",
        stdout);
    if (r->history != NULL)
        printf("history: %s (last %d entries)\n", r->history, REPL_HISTORY_MAX);
    else
        printf("history: not kept\n");
    fflush(stdout);
}

/*
 * Reads and compiles the next statement. LUA_OK: the function is on top;
 * an error status: its message is on top; REPL_SKIP: a dot command ran;
 * REPL_QUIT: leave the REPL.
 */
static int repl_read(lua_State *L, const struct repl *r)
{
    int interrupted;
    char *line = repl_read_line(r, PROMPT_FIRST, &interrupted);
    while (line != NULL) {
        int status;
        if (starts_with_word(line, ".exit")) {
            free(line);
            return REPL_QUIT;
        }
        if (starts_with_word(line, ".help")) {
            history_add(r, line);
            free(line);
            repl_print_help(r);
            return REPL_SKIP;
        }
        status = repl_compile(L, r, &line);
        if (status != REPL_RESTART)
            return status;
    }
    return REPL_QUIT;
}

/* ------------------------------------------------------------------ */
/* The REPL: running and printing                                      */
/* ------------------------------------------------------------------ */

/* Pushes torsh.repl_print and returns 1 if it is a function; else pushes nothing. */
static int push_repl_printer(lua_State *L)
{
    if (lua_getglobal(L, "torsh") == LUA_TTABLE) {
        int found = (lua_getfield(L, -1, "repl_print") == LUA_TFUNCTION);
        lua_remove(L, -2); /* the torsh table */
        if (found)
            return 1;
    }
    lua_pop(L, 1);
    return 0;
}

/* Pushes the text shown for the value at `idx`; `printer` is 0 or an index. */
static const char *display_text(lua_State *L, int idx, int printer, size_t *len)
{
    const char *text;
    if (printer == 0)
        return luaL_tolstring(L, idx, len);
    lua_pushvalue(L, printer);
    lua_pushvalue(L, idx);
    lua_call(L, 1, 1);
    text = luaL_tolstring(L, -1, len);
    lua_remove(L, -2);
    return text;
}

/* lua_CFunction: writes its arguments tab-separated, then a newline. */
static int print_results(lua_State *L)
{
    int n = lua_gettop(L), i;
    int printer = push_repl_printer(L) ? n + 1 : 0;
    for (i = 1; i <= n; i++) {
        size_t len;
        const char *text = display_text(L, i, printer, &len);
        if (i > 1)
            lua_writestring("\t", 1);
        lua_writestring(text, len);
        lua_pop(L, 1);
    }
    lua_writeline();
    return 0;
}

/* Runs the function on top and prints what it returns. */
static int repl_execute(lua_State *L)
{
    int base = lua_gettop(L) - 1; /* just below the function */
    int status = chunk_call(L, 0, LUA_MULTRET);
    int nresults = lua_gettop(L) - base;
    if (status != LUA_OK || nresults == 0)
        return status;
    luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
    lua_pushcfunction(L, print_results);
    lua_insert(L, base + 1);
    return chunk_call(L, nresults, 0);
}

static int repl_run(lua_State *L)
{
    struct repl r;
    int top = lua_gettop(L);
    repl_open(&r);
    if (r.use_readline)
        printf("%s %s (%s)  .help for help, Ctrl-D to leave\n", PROGNAME,
               TORSH_VERSION_STRING, LUA_RELEASE);
    for (;;) {
        int status = repl_read(L, &r);
        if (status == REPL_QUIT)
            break;
        if (status == LUA_OK)
            status = repl_execute(L);
        if (status != REPL_SKIP)
            report(L, status);
        fflush(stdout);
        lua_settop(L, top);
    }
    repl_close(&r);
    return EXIT_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* Start-up                                                            */
/* ------------------------------------------------------------------ */

/* Puts the stdlib and scripts folders in front of package.path. */
static void set_package_path(lua_State *L)
{
    const char *lib = stdlib_dir(), *scripts = scripts_dir();
    const char *old;
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    old = lua_tostring(L, -1);
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s/?.lua;%s/?/init.lua;%s",
                    lib, lib, scripts, scripts, old != NULL ? old : "");
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);
}

/*
 * Global `arg`: arg[0] is the script (the resolved path for a command),
 * arg[1..] its arguments, negative indices the interpreter and options.
 * With no script, arg[0] is the interpreter.
 */
static void set_arg_table(lua_State *L, const struct options *o)
{
    int s = o->script, i;
    int npos = o->argc - s - 1;
    lua_createtable(L, npos > 0 ? npos : 0, s + 1);
    for (i = 0; i < o->argc; i++) {
        int is_command = (i == s && script_is_command(o));
        lua_pushstring(L, is_command ? o->command_path : o->argv[i]);
        lua_rawseti(L, -2, (lua_Integer)i - s);
    }
    lua_setglobal(L, "arg");
}

/* Runs every -e CODE in order; stops at the first error. */
static int run_exec_options(lua_State *L, const struct options *o)
{
    int end = o->script > 0 ? o->script : o->argc, i;
    for (i = 1; i < end; i++) {
        const char *a = o->argv[i];
        const char *code;
        if (strcmp(a, "--") == 0)
            break;
        if (strncmp(a, "-e", 2) != 0)
            continue;
        code = (a[2] != '\0') ? a + 2 : o->argv[++i];
        if (run_string(L, code, "=(command line)") != LUA_OK)
            return LUA_ERRRUN;
    }
    return LUA_OK;
}

static int run_arguments(lua_State *L, const struct options *o)
{
    if (run_exec_options(L, o) != LUA_OK)
        return EXIT_FAILURE;
    if (o->script > 0) {
        int nargs = o->argc - o->script - 1;
        if (run_file(L, o->script_path, o->argv + o->script + 1, nargs) != LUA_OK)
            return EXIT_FAILURE;
    }
    if (o->interactive)
        return repl_run(L);
    if (o->script == 0 && !o->has_exec) {
        if (isatty(STDIN_FILENO))
            return repl_run(L);
        return run_file(L, NULL, NULL, 0) == LUA_OK ? EXIT_SUCCESS : EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}

/* lua_CFunction run in protected mode: opens the libraries and does the work. */
static int run_main(lua_State *L)
{
    const struct options *o = lua_touserdata(L, 1);
    luaL_checkversion(L);
    luaL_openlibs(L);
    set_package_path(L);
    luaL_requiref(L, "torsh", luaopen_torsh, 1);
    lua_pop(L, 1);
    set_arg_table(L, o);
    lua_pushinteger(L, run_arguments(L, o));
    return 1;
}

int main(int argc, char **argv)
{
    struct options o;
    lua_State *L;
    int code, status;
    memset(&o, 0, sizeof o);
    o.argc = argc;
    o.argv = argv;
    if ((code = parse_options(&o)) != 0)
        return code;
    if (o.show_help) {
        print_help(stdout);
        return EXIT_SUCCESS;
    }
    if (o.show_version) {
        print_version();
        if (o.script == 0 && !o.has_exec && !o.interactive)
            return EXIT_SUCCESS;
    }
    if (o.script > 0 && (code = resolve_script(&o)) != 0)
        return code;
    L = luaL_newstate();
    if (L == NULL) {
        print_error("cannot create the Lua state: not enough memory");
        return EXIT_FAILURE;
    }
    lua_pushcfunction(L, run_main);
    lua_pushlightuserdata(L, &o);
    status = lua_pcall(L, 1, 1, 0);
    code = (status == LUA_OK) ? (int)lua_tointeger(L, -1) : EXIT_FAILURE;
    report(L, status);
    lua_close(L); /* runs __gc and __close metamethods */
    return code;
}
