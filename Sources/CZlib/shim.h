// zlib, for reading gzipped data files (the Fashion-MNIST IDX files, DESIGN §7).
#include <zlib.h>
