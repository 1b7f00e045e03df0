// See dbm_shim.h. Everything here that may raise a Lua error runs under lua_pcall, so no longjmp
// ever crosses a Swift frame.
#include "dbm_shim.h"
#include <signal.h>
#include <stdio.h>
#include <string.h>

static void (*dbm_release_hook)(void *obj) = NULL;
static char dbm_kind_keys[DBM_KIND_COUNT];          // addresses used as registry keys of metatables
static const char *const dbm_kind_names[DBM_KIND_COUNT] = {"?", "dbm.Tensor", "dbm.Generator", "dbm.Writer", "dbm.Optimizer", "dbm.Dataset", "dbm.Model",
                                                                  "dbm.NpyAppender"};

// A userdata of ours. The kind and the magic live in the block itself, not only in its metatable: a
// script can give any userdata any metatable (debug.setmetatable), and a box is trusted only when its
// size, magic and kind all agree.
typedef struct { void *obj; int kind; unsigned magic; } dbm_box;
#define DBM_BOX_MAGIC 0x44424d31u   /* "DBM1" */

// The box at idx when it is a userdata of ours (any kind when kind is 0), else NULL.
static dbm_box *dbm_box_at(lua_State *L, int idx, int kind) {
    if (lua_type(L, idx) != LUA_TUSERDATA || lua_rawlen(L, idx) != sizeof(dbm_box)) return NULL;
    dbm_box *box = (dbm_box *)lua_touserdata(L, idx);
    if (box->magic != DBM_BOX_MAGIC || box->kind <= 0 || box->kind >= DBM_KIND_COUNT) return NULL;
    return kind == 0 || box->kind == kind ? box : NULL;
}

// ---------------------------------------------------------------- errors and the trampoline

void dbm_where(lua_State *L) {
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        lua_getinfo(L, "Sl", &ar);
        // Skip C frames (pcall, ...) and the embedded library, so the user's own line is named.
        if (ar.currentline > 0 && strncmp(ar.source, "=[dbm]", 6) != 0) {
            lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
            return;
        }
    }
    lua_pushliteral(L, "");
}

static int dbm_trampoline(lua_State *L) {
    dbm_swift_fn fn = (dbm_swift_fn)lua_touserdata(L, lua_upvalueindex(1));
    int n = fn(L);
    if (n >= 0) return n;
    if (lua_type(L, -1) == LUA_TSTRING) {   // prepend the script's position
        dbm_where(L);
        lua_insert(L, -2);
        lua_concat(L, 2);
    }
    return lua_error(L);
}

// ---------------------------------------------------------------- protected helpers

typedef struct { const dbm_reg *regs; int n; } dbm_reg_args;

static int p_register(lua_State *L) {
    dbm_reg_args *a = (dbm_reg_args *)lua_touserdata(L, 2);
    for (int i = 0; i < a->n; i++) {
        lua_pushlightuserdata(L, (void *)a->regs[i].fn);
        lua_pushinteger(L, a->regs[i].tag);
        lua_pushcclosure(L, dbm_trampoline, 2);
        lua_setfield(L, 1, a->regs[i].name);
    }
    return 0;
}

int dbm_register(lua_State *L, int tableidx, const dbm_reg *regs, int n) {
    tableidx = lua_absindex(L, tableidx);
    dbm_reg_args a = {regs, n};
    lua_pushcfunction(L, p_register);
    lua_pushvalue(L, tableidx);
    lua_pushlightuserdata(L, &a);
    return lua_pcall(L, 2, 0, 0);
}

static int p_push_string(lua_State *L) {
    const char *s = (const char *)lua_touserdata(L, 1);
    size_t len = (size_t)lua_tointeger(L, 2);
    lua_pushlstring(L, s, len);
    return 1;
}

int dbm_push_string(lua_State *L, const char *s, size_t len) {
    lua_pushcfunction(L, p_push_string);
    lua_pushlightuserdata(L, (void *)s);
    lua_pushinteger(L, (lua_Integer)len);
    return lua_pcall(L, 2, 1, 0);
}

int dbm_error(lua_State *L, const char *msg) {
    dbm_push_string(L, msg, strlen(msg));   // on failure the memory error message is on top instead
    return DBM_ERROR;
}

static int p_push_numbers(lua_State *L) {
    const double *v = (const double *)lua_touserdata(L, 1);
    lua_Integer n = lua_tointeger(L, 2);
    lua_createtable(L, (int)(n > 0x7fffffff ? 0x7fffffff : n), 0);
    for (lua_Integer i = 0; i < n; i++) {
        lua_pushnumber(L, v[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

int dbm_push_numbers(lua_State *L, const double *v, size_t n) {
    lua_pushcfunction(L, p_push_numbers);
    lua_pushlightuserdata(L, (void *)v);
    lua_pushinteger(L, (lua_Integer)n);
    return lua_pcall(L, 2, 1, 0);
}

static int p_push_integers(lua_State *L) {
    const int64_t *v = (const int64_t *)lua_touserdata(L, 1);
    lua_Integer n = lua_tointeger(L, 2);
    lua_createtable(L, (int)(n > 0x7fffffff ? 0x7fffffff : n), 0);
    for (lua_Integer i = 0; i < n; i++) {
        lua_pushinteger(L, (lua_Integer)v[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

int dbm_push_integers(lua_State *L, const int64_t *v, size_t n) {
    lua_pushcfunction(L, p_push_integers);
    lua_pushlightuserdata(L, (void *)v);
    lua_pushinteger(L, (lua_Integer)n);
    return lua_pcall(L, 2, 1, 0);
}

static int p_new_table(lua_State *L) {
    lua_createtable(L, (int)lua_tointeger(L, 1), (int)lua_tointeger(L, 2));
    return 1;
}

int dbm_new_table(lua_State *L, int narr, int nrec) {
    lua_pushcfunction(L, p_new_table);
    lua_pushinteger(L, narr < 0 ? 0 : narr);
    lua_pushinteger(L, nrec < 0 ? 0 : nrec);
    return lua_pcall(L, 2, 1, 0);
}

static int p_set_field(lua_State *L) {   // (t, value, key)
    lua_pushvalue(L, 3);
    lua_pushvalue(L, 2);
    lua_rawset(L, 1);
    return 0;
}

int dbm_set_field(lua_State *L, int tableidx, const char *key) {
    tableidx = lua_absindex(L, tableidx);
    lua_pushcfunction(L, p_set_field);          // value f
    lua_pushvalue(L, tableidx);                 // value f t
    lua_rotate(L, -3, 2);                       // f t value
    lua_pushcfunction(L, p_push_string);
    lua_pushlightuserdata(L, (void *)key);
    lua_pushinteger(L, (lua_Integer)strlen(key));
    int st = lua_pcall(L, 2, 1, 0);             // f t value key
    if (st != 0) {                              // f t value msg -> msg
        lua_rotate(L, -4, 1);
        lua_pop(L, 3);
        return st;
    }
    return lua_pcall(L, 3, 0, 0);
}

static int p_get_field(lua_State *L) {   // (t, key)
    lua_pushvalue(L, 2);
    lua_rawget(L, 1);
    return 1;
}

int dbm_get_field(lua_State *L, int tableidx, const char *key) {
    tableidx = lua_absindex(L, tableidx);
    lua_pushcfunction(L, p_get_field);
    lua_pushvalue(L, tableidx);
    int st = dbm_push_string(L, key, strlen(key));   // f t key (or f t msg)
    if (st != 0) { lua_rotate(L, -3, 1); lua_pop(L, 2); return st; }
    return lua_pcall(L, 2, 1, 0);
}

static int p_set_index(lua_State *L) {   // (t, value, i)
    lua_pushvalue(L, 2);
    lua_rawseti(L, 1, lua_tointeger(L, 3));
    return 0;
}

int dbm_set_index(lua_State *L, int tableidx, lua_Integer i) {
    tableidx = lua_absindex(L, tableidx);
    lua_pushcfunction(L, p_set_index);          // value f
    lua_pushvalue(L, tableidx);                 // value f t
    lua_rotate(L, -3, 2);                       // f t value
    lua_pushinteger(L, i);
    return lua_pcall(L, 3, 0, 0);
}

// ---------------------------------------------------------------- Swift objects

static int dbm_object_gc(lua_State *L) {
    dbm_box *box = dbm_box_at(L, 1, 0);
    if (box && box->obj && dbm_release_hook) {
        void *obj = box->obj;
        box->obj = NULL;
        dbm_release_hook(obj);
    }
    return 0;
}

void dbm_push_metatable(lua_State *L, int kind) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &dbm_kind_keys[kind]);
}

// The userdata of every Swift object Lua holds, keyed by the object's address, with weak values: pushing
// an object Lua already holds pushes the same userdata, so identity (==, table keys) follows the Swift
// object (model.weight == opt:parameters()[1]). An entry goes when its userdata is collected, which
// happens before the object can be freed (the userdata holds it), so an address is never reused while
// it is in the table.
static char dbm_objects_key;

static int p_push_object(lua_State *L) {   // (obj, kind, extbytes, caller_keeps flag)
    lua_rawgetp(L, LUA_REGISTRYINDEX, &dbm_objects_key);
    if (lua_rawgetp(L, -1, lua_touserdata(L, 1)) == LUA_TUSERDATA) return 1;   // the caller keeps its reference
    lua_pop(L, 1);
    dbm_box *box = (dbm_box *)lua_newuserdatauv(L, sizeof(dbm_box), 1);
    box->obj = NULL;
    box->kind = (int)lua_tointeger(L, 2);
    box->magic = DBM_BOX_MAGIC;
    lua_pushvalue(L, -1);
    lua_rawsetp(L, -3, lua_touserdata(L, 1));   // may fail (memory) while __gc owns nothing yet
    dbm_push_metatable(L, box->kind);
    lua_setmetatable(L, -2);
    box->obj = lua_touserdata(L, 1);   // set last: from here on __gc owns it
    *(int *)lua_touserdata(L, 4) = 0;
    // Tell the collector about the memory held outside Lua, in whole KiB; smaller tensors add up
    // in a remainder so that many small ones count too.
    static size_t pending_bytes = 0;
    pending_bytes += (size_t)lua_tointeger(L, 3);
    if (pending_bytes >= 1024) {
        size_t kb = pending_bytes / 1024;
        pending_bytes %= 1024;
        lua_gc(L, LUA_GCSTEP, (int)(kb > 0x40000000 ? 0x40000000 : kb));
    }
    return 1;
}

// *caller_keeps says who owns the caller's reference to obj after the call, whatever the status: 1, the
// caller (it releases it: the push failed before a userdata took it, or an existing userdata already
// holds the object), 0, the new userdata's __gc. The status alone cannot say: after Ctrl-C the interrupt
// hook (LUA_MASKRET) raises its error as p_push_object returns, when the userdata already owns obj, and a
// caller that released it then freed it twice (signal 11 in dbm_object_gc).
int dbm_push_object(lua_State *L, void *obj, int kind, size_t extbytes, int *caller_keeps) {
    *caller_keeps = 1;
    lua_pushcfunction(L, p_push_object);
    lua_pushlightuserdata(L, obj);
    lua_pushinteger(L, kind);
    lua_pushinteger(L, (lua_Integer)extbytes);
    lua_pushlightuserdata(L, caller_keeps);
    return lua_pcall(L, 4, 1, 0);
}

int dbm_object_kind(lua_State *L, int idx) {
    dbm_box *box = dbm_box_at(L, idx, 0);
    return box && dbm_toobject(L, idx, box->kind) ? box->kind : 0;
}

// Is the value at idx a userdata of ours, of this kind, with its own metatable? Its object, or NULL.
void *dbm_toobject(lua_State *L, int idx, int kind) {
    dbm_box *box = dbm_box_at(L, idx, kind);
    if (!box || !lua_getmetatable(L, idx)) return NULL;
    dbm_push_metatable(L, kind);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same ? box->obj : NULL;
}

// __index of tensors, in C to keep method calls cheap: numbers index elements/rows through the
// Swift function in upvalue 2; other keys are looked up in the methods table in upvalue 1, then in
// the properties table in upvalue 3 (key -> getter called with the tensor: t.grad, t.requires_grad).
static int dbm_tensor_index(lua_State *L) {
    if (lua_type(L, 2) == LUA_TNUMBER) {
        lua_pushvalue(L, lua_upvalueindex(2));
        lua_insert(L, 1);
        lua_call(L, 2, 1);
        return 1;
    }
    lua_settop(L, 2);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    if (lua_type(L, lua_upvalueindex(3)) != LUA_TTABLE || lua_rawget(L, lua_upvalueindex(3)) == LUA_TNIL) return 1;
    lua_insert(L, 1);   // getter t
    lua_settop(L, 2);
    lua_call(L, 1, 1);
    return 1;
}

static int dbm_make_indexer(lua_State *L) {   // (methods, index_function [, properties]) -> __index function
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    lua_pushcclosure(L, dbm_tensor_index, 3);
    return 1;
}

static int p_add_indexer_factory(lua_State *L) {
    lua_pushcfunction(L, dbm_make_indexer);
    lua_setfield(L, 1, "_make_indexer");
    return 0;
}

int dbm_add_indexer_factory(lua_State *L, int tableidx) {
    tableidx = lua_absindex(L, tableidx);
    lua_pushcfunction(L, p_add_indexer_factory);
    lua_pushvalue(L, tableidx);
    return lua_pcall(L, 1, 0, 0);
}

// ---------------------------------------------------------------- state

static int p_open(lua_State *L) {
    luaL_openlibs(L);
    for (int k = 1; k < DBM_KIND_COUNT; k++) {
        lua_createtable(L, 0, 8);
        lua_pushstring(L, dbm_kind_names[k]);
        lua_setfield(L, -2, "__name");
        lua_pushcfunction(L, dbm_object_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushliteral(L, "dbm");
        lua_setfield(L, -2, "__metatable_owner");
        lua_rawsetp(L, LUA_REGISTRYINDEX, &dbm_kind_keys[k]);
    }
    lua_createtable(L, 0, 64);           // dbm_objects: address -> userdata, weak values
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &dbm_objects_key);
    return 0;
}

static void dbm_warn_off(void *ud, const char *msg, int tocont) { (void)ud; (void)msg; (void)tocont; }

lua_State *dbm_newstate(void (*release)(void *obj)) {
    dbm_release_hook = release;
    lua_State *L = luaL_newstate();
    if (!L) return NULL;
    lua_pushcfunction(L, p_open);
    if (lua_pcall(L, 0, 0, 0) != 0) { lua_close(L); return NULL; }
    (void)dbm_warn_off;
    return L;
}

void dbm_close(lua_State *L) { if (L) lua_close(L); }

// ---------------------------------------------------------------- running code

static int dbm_msghandler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int dbm_pcall_traceback(lua_State *L, int nargs, int nresults) {
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, dbm_msghandler);
    lua_insert(L, base);
    int st = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);
    return st;
}

typedef struct { const char *code; size_t len; const char *name; } dbm_chunk;

static int p_load(lua_State *L) {
    dbm_chunk *c = (dbm_chunk *)lua_touserdata(L, 1);
    int st = luaL_loadbuffer(L, c->code, c->len, c->name);
    if (st != LUA_OK) return lua_error(L);
    return 1;
}

int dbm_loadbuffer(lua_State *L, const char *code, size_t len, const char *chunkname) {
    dbm_chunk c = {code, len, chunkname};
    lua_pushcfunction(L, p_load);
    lua_pushlightuserdata(L, &c);
    return lua_pcall(L, 1, 1, 0);
}

int dbm_dostring(lua_State *L, const char *code, size_t len, const char *chunkname, int nresults) {
    int st = dbm_loadbuffer(L, code, len, chunkname);
    if (st != LUA_OK) return st;
    return dbm_pcall_traceback(L, 0, nresults);
}

void dbm_gc_full(lua_State *L) { lua_gc(L, LUA_GCCOLLECT); }
int dbm_gc_count_kb(lua_State *L) { return lua_gc(L, LUA_GCCOUNT); }

// ---------------------------------------------------------------- interrupts
// The one piece of process-wide state: signal handlers cannot carry context.

static lua_State *volatile dbm_sigint_state = NULL;
static volatile sig_atomic_t dbm_sigint_seen = 0;
static volatile sig_atomic_t dbm_sigint_count = 0;
static volatile sig_atomic_t dbm_sigint_pending_in_lua = 0;   // set by the handler, cleared when the main thread stops

// The message of the interrupt raised since the chunk was armed ("" for none): a pcall that caught it
// passes it on (dbm.lua), so Ctrl-C stops the script even inside code that recovers from errors.
static char dbm_interrupt_message[512];

static int dbm_raise_interrupt(lua_State *L) {
    luaL_where(L, 1);
    lua_pushliteral(L, "interrupted!");
    lua_concat(L, 2);
    snprintf(dbm_interrupt_message, sizeof dbm_interrupt_message, "%s", lua_tostring(L, -1));
    return lua_error(L);
}

static void dbm_interrupt_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    dbm_sigint_pending_in_lua = 0;
    dbm_raise_interrupt(L);
}

// A coroutine's hook: it stays installed (every 1000 instructions: a negligible cost) and raises only
// while an interrupt is pending; the main thread, whose own hook is set by the handler, then stops too.
static void dbm_coroutine_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    if (dbm_sigint_pending_in_lua && dbm_sigint_state) dbm_raise_interrupt(L);
}

void dbm_watch_interrupts(lua_State *co) { lua_sethook(co, dbm_coroutine_hook, LUA_MASKCOUNT, 1000); }

static void dbm_on_sigint(int sig) {
    (void)sig;
    dbm_sigint_count++;
    lua_State *L = dbm_sigint_state;
    if (L) dbm_sigint_pending_in_lua = 1;
    if (L) lua_sethook(L, dbm_interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    else dbm_sigint_seen = 1;
}

void dbm_sigint_arm(lua_State *L) {
    dbm_sigint_pending_in_lua = 0;
    dbm_interrupt_message[0] = 0;
    dbm_sigint_state = L;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = dbm_on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    // A parent may have started us with SIGINT blocked (test runners do): Ctrl-C must get through.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

int dbm_sigint_generation(void) {
    return dbm_sigint_count;
}

void dbm_sigint_disarm(void) {
    dbm_sigint_state = NULL;
    dbm_interrupt_message[0] = 0;
}

const char *dbm_interrupt_raised(void) {
    return dbm_interrupt_message[0] ? dbm_interrupt_message : NULL;
}

int dbm_sigint_pending(void) {
    int s = dbm_sigint_seen;
    dbm_sigint_seen = 0;
    return s;
}

// ---------------------------------------------------------------- stdio

void dbm_stdout_line_buffered(void) { setvbuf(stdout, NULL, _IOLBF, 0); }
void dbm_write_stderr(const char *s) { fputs(s, stderr); fflush(stderr); }
void dbm_flush_stdout(void) { fflush(stdout); }
