"""Control-system front ends of the twin (DESIGN.md layer 6): ACNET (`jacc_twin.control.acnet`:
DRF2 requests and a DPM-like adapter) and EPICS (`jacc_twin.control.epics`: a Channel Access
soft IOC with caproto; `jacc_twin.control.pva`: PV Access with p4p).

Submodules import their client or server libraries on use, so ``from jacc_twin.control
import acnet`` needs neither caproto nor p4p.
"""
