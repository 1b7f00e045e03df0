// The C side of the Lua bridge (DESIGN §6).
// Swift never calls lua_error, luaL_error or luaL_check*, and never calls a Lua API function that may
// raise (marked 'm' or 'e' in the manual) directly: such calls live here, each run under lua_pcall so
// that a longjmp can only land in C. Swift functions exposed to Lua have the type dbm_swift_fn and are
// called through one trampoline, which raises their errors with the script's file and line.
#ifndef DBM_SHIM_H
#define DBM_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <lua5.4/lua.h>
#include <lua5.4/lauxlib.h>
#include <lua5.4/lualib.h>

// Returns the number of results (>= 0), or DBM_ERROR with the error message on top of the stack.
typedef int (*dbm_swift_fn)(lua_State *L);
#define DBM_ERROR (-1)

// Kinds of Swift objects held in userdata (one retained pointer each).
enum { DBM_KIND_TENSOR = 1, DBM_KIND_GENERATOR = 2, DBM_KIND_WRITER = 3, DBM_KIND_OPTIMIZER = 4, DBM_KIND_DATASET = 5,
       DBM_KIND_MODEL = 6, DBM_KIND_APPENDER = 7,
       DBM_KIND_COUNT = 8 };

// ---- Wrappers for the C-API macros Swift cannot import (none of these raise) ----
static inline int dbm_upvalueindex(int i) { return lua_upvalueindex(i); }
static inline void dbm_pop(lua_State *L, int n) { lua_pop(L, n); }
static inline double dbm_tonumber(lua_State *L, int i, int *isnum) { return lua_tonumberx(L, i, isnum); }
static inline lua_Integer dbm_tointeger(lua_State *L, int i, int *isnum) { return lua_tointegerx(L, i, isnum); }
static inline const char *dbm_tolstring_raw(lua_State *L, int i, size_t *len) {
    // Only for values that are already strings: lua_tolstring converts numbers in place (may allocate).
    return lua_type(L, i) == LUA_TSTRING ? lua_tolstring(L, i, len) : NULL;
}
static inline int dbm_registryindex(void) { return LUA_REGISTRYINDEX; }
// A pointer-sized area owned by the state: the Swift side keeps its per-state context there.
static inline void **dbm_extraspace(lua_State *L) { return (void **)lua_getextraspace(L); }

// ---- State life cycle (C side) ----
// Creates a state with the standard libraries, the object metatables and the release hook.
lua_State *dbm_newstate(void (*release)(void *obj));
void dbm_close(lua_State *L);

// ---- Registering Swift functions ----
typedef struct { const char *name; dbm_swift_fn fn; lua_Integer tag; } dbm_reg;
// Sets t[name] = trampoline closure for each entry, for the table at tableidx. The closure's upvalues
// are fn (light userdata) and tag (an integer the Swift side reads with dbm_upvalueindex(2)).
// Protected: 0 or error.
int dbm_register(lua_State *L, int tableidx, const dbm_reg *regs, int n);

// ---- Protected pushes and table writes: 0 on success, else an error message is on top ----
int dbm_push_string(lua_State *L, const char *s, size_t len);
int dbm_push_numbers(lua_State *L, const double *v, size_t n);     // new array table {v1, ..., vn}
int dbm_push_integers(lua_State *L, const int64_t *v, size_t n);   // new array table of integers
int dbm_new_table(lua_State *L, int narr, int nrec);
int dbm_set_field(lua_State *L, int tableidx, const char *key);    // t[key] = top (raw); pops the value
int dbm_set_index(lua_State *L, int tableidx, lua_Integer i);      // t[i] = top (raw); pops the value
int dbm_get_field(lua_State *L, int tableidx, const char *key);    // pushes t[key] (raw get)
// Pushes a message; always returns DBM_ERROR so Swift can write `return dbm_error(L, msg)`.
int dbm_error(lua_State *L, const char *msg);

// ---- Swift objects in userdata ----
// Pushes a full userdata holding obj (already retained for Lua) with the metatable of kind.
// extbytes: memory held outside Lua, reported to the collector as a GC step (DESIGN §6).
// On failure obj is not owned by Lua: the caller releases it.
int dbm_push_object(lua_State *L, void *obj, int kind, size_t extbytes, int *caller_keeps);
void *dbm_toobject(lua_State *L, int idx, int kind);   // NULL if the value is not of that kind
int dbm_object_kind(lua_State *L, int idx);            // 0 if not one of ours
void dbm_push_metatable(lua_State *L, int kind);       // pushes the metatable of kind (no raise)
// Sets t._make_indexer(methods, index_fn): builds a C __index for tensors. Protected: 0 or error.
int dbm_add_indexer_factory(lua_State *L, int tableidx);

// ---- Running code ----
// Loads and runs a chunk under a traceback handler; nresults as lua_pcall. Returns the status.
int dbm_dostring(lua_State *L, const char *code, size_t len, const char *chunkname, int nresults);
int dbm_loadbuffer(lua_State *L, const char *code, size_t len, const char *chunkname);
int dbm_pcall_traceback(lua_State *L, int nargs, int nresults);
// Full garbage collection (lua_gc is variadic; call it from C).
void dbm_gc_full(lua_State *L);
int dbm_gc_count_kb(lua_State *L);

// ---- Interrupts (Ctrl-C) ----
// While armed, SIGINT sets a hook so that the running Lua code raises "interrupted!" at its next
// instruction (as the standalone lua does). Swift code in progress finishes first.
void dbm_sigint_arm(lua_State *L);
void dbm_sigint_disarm(void);
int dbm_sigint_pending(void);   // a SIGINT arrived while disarmed (e.g. at the prompt); clears it
int dbm_sigint_generation(void); // SIGINTs so far: long Swift loops compare it between chunks and stop early
// Ctrl-C inside a coroutine: the signal handler can only reach the main thread's hook, so each coroutine
// gets a count hook that raises "interrupted!" while an interrupt is pending (a few instructions later).
void dbm_watch_interrupts(lua_State *co);
// The message ("<where>: interrupted!") of the interrupt raised since the running chunk was armed, or
// NULL: pcall and xpcall pass it on instead of returning it (dbm.lua).
const char *dbm_interrupt_raised(void);

// stdio from Swift 6 without touching the C globals stdout/stderr there.
void dbm_stdout_line_buffered(void);
void dbm_write_stderr(const char *s);
void dbm_flush_stdout(void);

// Pushes "file:line: " of the nearest Lua frame outside the embedded library (or "").
void dbm_where(lua_State *L);

#endif
