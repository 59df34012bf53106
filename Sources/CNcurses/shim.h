#ifndef KVB_CNCURSES_SHIM_H
#define KVB_CNCURSES_SHIM_H
// Wide-character ncurses: UTF-8 text (box drawing, sparklines) needs ncursesw.
#define NCURSES_WIDECHAR 1
#include <locale.h>
#include <ncursesw/curses.h>

// ncurses' globals and function-like macros do not import into Swift: these wrap them.
static inline WINDOW *kvb_stdscr(void) { return stdscr; }
static inline int kvb_lines(void) { return LINES; }
static inline int kvb_cols(void) { return COLS; }
static inline int kvb_color_pair(int n) { return COLOR_PAIR(n); }
static inline int kvb_attr_bold(void) { return A_BOLD; }
static inline int kvb_attr_dim(void) { return A_DIM; }
static inline int kvb_attr_reverse(void) { return A_REVERSE; }
static inline void kvb_getmaxyx(WINDOW *w, int *y, int *x) { getmaxyx(w, *y, *x); }
static inline int kvb_setlocale_all(void) { return setlocale(LC_ALL, "") != NULL; }
#endif
