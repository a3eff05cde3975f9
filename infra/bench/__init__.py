"""`make bench`: trueup's scale benchmark, which prints figures and asserts no timings.

A full sync of both sources and a snapshot run through the real handlers, each in a process of its
own, against the demo upstreams (with injected latency) and moto in server mode, each also in a
process of its own so that neither's memory or CPU is counted against trueup. See `__main__`.
"""
