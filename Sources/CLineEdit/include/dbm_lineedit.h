// Line editing for the REPL through libedit (BSD licence, readline-compatible API).
#ifndef DBM_LINEEDIT_H
#define DBM_LINEEDIT_H
#include <lua5.4/lua.h>

// Reads a line with editing; returns a malloc'd string (caller frees) or NULL at end of input.
char *dbm_readline(const char *prompt);
void dbm_history_add(const char *line);
void dbm_history_load(const char *path);
void dbm_history_save(const char *path);
// Tab completion of globals and fields ("dbm.ei<TAB>") using the Lua function dbm._complete(text).
void dbm_completion_install(lua_State *L);
#endif
