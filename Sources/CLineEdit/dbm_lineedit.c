// libedit's readline interface keeps its configuration in globals and calls completion functions
// without a context pointer, so the Lua state used for completion is the one static below: the REPL's
// single piece of process-wide state on this side.
#include "dbm_lineedit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <editline/readline.h>
#include <lua5.4/lauxlib.h>

static lua_State *completion_state = NULL;
static char **found_matches = NULL;
static int found_count = 0;

char *dbm_readline(const char *prompt) { return readline(prompt); }
void dbm_history_add(const char *line) { add_history(line); }
void dbm_history_load(const char *path) { read_history(path); }
void dbm_history_save(const char *path) { write_history(path); }

static void free_matches(void) {
    for (int i = 0; i < found_count; i++) free(found_matches[i]);
    free(found_matches);
    found_matches = NULL;
    found_count = 0;
}

static int call_complete(lua_State *L) {   // (text) -> table of completions
    lua_getglobal(L, "dbm");
    if (lua_type(L, -1) != LUA_TTABLE) return 0;
    lua_getfield(L, -1, "_complete");
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    return 1;
}

// Collects the candidates for text once (state 0), then hands them out one by one.
static char *generator(const char *text, int state) {
    static int next = 0;
    if (state == 0) {
        free_matches();
        next = 0;
        lua_State *L = completion_state;
        if (L == NULL) return NULL;
        int top = lua_gettop(L);
        lua_pushcfunction(L, call_complete);
        lua_pushstring(L, text);
        if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, -1) == LUA_TTABLE) {
            int n = (int)lua_rawlen(L, -1);
            found_matches = calloc((size_t)n + 1, sizeof(char *));
            for (int i = 1; found_matches && i <= n; i++) {
                lua_rawgeti(L, -1, i);
                const char *s = lua_tostring(L, -1);
                if (s) found_matches[found_count++] = strdup(s);
                lua_pop(L, 1);
            }
        }
        lua_settop(L, top);
    }
    if (next < found_count) return strdup(found_matches[next++]);
    return NULL;
}

static char **attempt(const char *text, int start, int end) {
    (void)start; (void)end;
    rl_attempted_completion_over = 1;   // no file-name completion as a fallback
    return rl_completion_matches(text, generator);
}

void dbm_completion_install(lua_State *L) {
    completion_state = L;
    // '.' and ':' belong to a word, so that "dbm.ei" and "t:res" complete as a whole.
    rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{(,+-*/%^~#[]";
    rl_attempted_completion_function = attempt;
    rl_completion_append_character = '\0';   // "t:reshape" then "(", not "t:reshape ("
}
