"""DRF2 requests: a table of valid requests (parts, canonical text, round trip, pretty print)
and of invalid ones (each a ValueError naming the problem and its character)."""

import pytest

from jacc_twin.control import acnet
from jacc_twin.control.acnet import (ArrayRange, ByteRange, ClockEvent, DefaultEvent, ImmediateEvent,
                                     NeverEvent, PeriodicEvent, StateEvent, TimeFreq)

# text -> (device, property, range, field, event, canonical text)
VALID = {
    "M:OUTTMP": ("M:OUTTMP", "READING", None, "SCALED", DefaultEvent(), "M:OUTTMP.READING.SCALED"),
    "M|OUTTMP[]@e,02": ("M:OUTTMP", "STATUS", ArrayRange(0, None), "ALL", ClockEvent(2, "E", TimeFreq(micros=0)),
                        "M:OUTTMP.STATUS[].ALL@E,2,E,0"),
    "M:OUTTMP@p,1000": ("M:OUTTMP", "READING", None, "SCALED", PeriodicEvent(TimeFreq(micros=1_000_000)),
                        "M:OUTTMP.READING.SCALED@P,1S,TRUE"),
    "N:IHA1R.SETTING@I": ("N:IHA1R", "SETTING", None, "SCALED", ImmediateEvent(), "N:IHA1R.SETTING.SCALED@I"),
    "B:TRMH1D.COMMON@E,1D,E,10": ("B:TRMH1D", "READING", None, "SCALED",
                                  ClockEvent(0x1D, "E", TimeFreq(micros=10_000)),
                                  "B:TRMH1D.READING.SCALED@E,1D,E,10M"),
    "M?OUTTMP.VOLTS": ("M:OUTTMP", "READING", None, "PRIMARY", DefaultEvent(), "M:OUTTMP.READING.PRIMARY"),
    "m_outtmp": ("M:OUTTMP", "SETTING", None, "SCALED", DefaultEvent(), "M:OUTTMP.SETTING.SCALED"),
    "M:OUTTMP.prset[3:7].raw@Q,5H,FALSE": ("M:OUTTMP", "SETTING", ArrayRange(3, 7), "RAW",
                                            PeriodicEvent(TimeFreq(hertz=5), False, False),
                                            "M:OUTTMP.SETTING[3:7].RAW@Q,5H,FALSE"),
    "M:OUTTMP[4]": ("M:OUTTMP", "READING", ArrayRange(4, 4), "SCALED", DefaultEvent(), "M:OUTTMP.READING[4].SCALED"),
    "M:OUTTMP[4:4]": ("M:OUTTMP", "READING", ArrayRange(4, 4), "SCALED", DefaultEvent(),
                      "M:OUTTMP.READING[4].SCALED"),
    "M:OUTTMP[:9]": ("M:OUTTMP", "READING", ArrayRange(0, 9), "SCALED", DefaultEvent(),
                     "M:OUTTMP.READING[0:9].SCALED"),
    "M:OUTTMP[2:]": ("M:OUTTMP", "READING", ArrayRange(2, None), "SCALED", DefaultEvent(),
                     "M:OUTTMP.READING[2:].SCALED"),
    "M:OUTTMP[0:]": ("M:OUTTMP", "READING", ArrayRange(0, None), "SCALED", DefaultEvent(),
                     "M:OUTTMP.READING[].SCALED"),
    "M:OUTTMP[65535]": ("M:OUTTMP", "READING", ArrayRange(65535, 65535), "SCALED", DefaultEvent(),
                        "M:OUTTMP.READING[65535].SCALED"),
    "M:OUTTMP{8}": ("M:OUTTMP", "READING", ByteRange(8, None), "SCALED", DefaultEvent(),
                    "M:OUTTMP.READING{8}.SCALED"),
    "M:OUTTMP{0:4}.RAW": ("M:OUTTMP", "READING", ByteRange(0, 4), "RAW", DefaultEvent(),
                          "M:OUTTMP.READING{0:4}.RAW"),
    "M|OUTTMP.TEXT": ("M:OUTTMP", "STATUS", None, "TEXT", DefaultEvent(), "M:OUTTMP.STATUS.TEXT"),
    "M:OUTTMP.BASIC_STATUS.ON": ("M:OUTTMP", "STATUS", None, "ON", DefaultEvent(), "M:OUTTMP.STATUS.ON"),
    "M:OUTTMP.STS.extended_text@N": ("M:OUTTMP", "STATUS", None, "EXTENDED_TEXT", NeverEvent(),
                                     "M:OUTTMP.STATUS.EXTENDED_TEXT@N"),
    "M&OUTTMP": ("M:OUTTMP", "CONTROL", None, None, DefaultEvent(), "M:OUTTMP.CONTROL"),
    "M:OUTTMP.CTRL": ("M:OUTTMP", "CONTROL", None, None, DefaultEvent(), "M:OUTTMP.CONTROL"),
    "M:OUTTMP.PRBCTL": ("M:OUTTMP", "CONTROL", None, None, DefaultEvent(), "M:OUTTMP.CONTROL"),
    "M@OUTTMP": ("M:OUTTMP", "ANALOG", None, "ALL", DefaultEvent(), "M:OUTTMP.ANALOG.ALL"),
    "M:OUTTMP.AA.MAX": ("M:OUTTMP", "ANALOG", None, "MAX", DefaultEvent(), "M:OUTTMP.ANALOG.MAX"),
    "M@OUTTMP.ALARM_ENABLE": ("M:OUTTMP", "ANALOG", None, "ALARM_ENABLE", DefaultEvent(),
                              "M:OUTTMP.ANALOG.ALARM_ENABLE"),
    "M:OUTTMP.ANALOG_ALARM.TRIES_NEEDED": ("M:OUTTMP", "ANALOG", None, "TRIES_NEEDED", DefaultEvent(),
                                           "M:OUTTMP.ANALOG.TRIES_NEEDED"),
    "M$OUTTMP.MASK": ("M:OUTTMP", "DIGITAL", None, "MASK", DefaultEvent(), "M:OUTTMP.DIGITAL.MASK"),
    "M:OUTTMP.DA.ABORT_INHIBIT": ("M:OUTTMP", "DIGITAL", None, "ABORT_INHIBIT", DefaultEvent(),
                                  "M:OUTTMP.DIGITAL.ABORT_INHIBIT"),
    "M:OUTTMP.PRDABL": ("M:OUTTMP", "DIGITAL", None, "ALL", DefaultEvent(), "M:OUTTMP.DIGITAL.ALL"),
    "M~OUTTMP": ("M:OUTTMP", "DESCRIPTION", None, None, DefaultEvent(), "M:OUTTMP.DESCRIPTION"),
    "M:OUTTMP.DESC": ("M:OUTTMP", "DESCRIPTION", None, None, DefaultEvent(), "M:OUTTMP.DESCRIPTION"),
    "M_OUTTMP.SETTING": ("M:OUTTMP", "SETTING", None, "SCALED", DefaultEvent(), "M:OUTTMP.SETTING.SCALED"),
    "0:12345": ("0:12345", "READING", None, "SCALED", DefaultEvent(), "0:12345.READING.SCALED"),
    "M:OUTTMP@U": ("M:OUTTMP", "READING", None, "SCALED", DefaultEvent(), "M:OUTTMP.READING.SCALED"),
    "M:OUTTMP@P": ("M:OUTTMP", "READING", None, "SCALED", PeriodicEvent(TimeFreq(micros=1_000_000)),
                   "M:OUTTMP.READING.SCALED@P,1S,TRUE"),
    "M:OUTTMP@P,1500": ("M:OUTTMP", "READING", None, "SCALED", PeriodicEvent(TimeFreq(micros=1_500_000)),
                        "M:OUTTMP.READING.SCALED@P,1500M,TRUE"),
    "M:OUTTMP@p,2s,f": ("M:OUTTMP", "READING", None, "SCALED",
                        PeriodicEvent(TimeFreq(micros=2_000_000), False), "M:OUTTMP.READING.SCALED@P,2S,FALSE"),
    "M:OUTTMP@P,250U": ("M:OUTTMP", "READING", None, "SCALED", PeriodicEvent(TimeFreq(micros=250)),
                        "M:OUTTMP.READING.SCALED@P,250U,TRUE"),
    "M:OUTTMP@P,15H": ("M:OUTTMP", "READING", None, "SCALED", PeriodicEvent(TimeFreq(hertz=15)),
                       "M:OUTTMP.READING.SCALED@P,15H,TRUE"),
    "M:OUTTMP@P,2000H": ("M:OUTTMP", "READING", None, "SCALED", PeriodicEvent(TimeFreq(hertz=2000)),
                         "M:OUTTMP.READING.SCALED@P,2K,TRUE"),
    "M:OUTTMP@Q,1K,TRUE": ("M:OUTTMP", "READING", None, "SCALED",
                           PeriodicEvent(TimeFreq(hertz=1000), True, False), "M:OUTTMP.READING.SCALED@Q,1K,TRUE"),
    "M:OUTTMP@E,8f,H": ("M:OUTTMP", "READING", None, "SCALED", ClockEvent(0x8F, "H", TimeFreq(micros=0)),
                        "M:OUTTMP.READING.SCALED@E,8F,H,0"),
    "M:OUTTMP@E,FFFF,S,2S": ("M:OUTTMP", "READING", None, "SCALED",
                             ClockEvent(0xFFFF, "S", TimeFreq(micros=2_000_000)),
                             "M:OUTTMP.READING.SCALED@E,FFFF,S,2S"),
    "M:OUTTMP@S,G:STATE,5,100,>=": ("M:OUTTMP", "READING", None, "SCALED",
                                    StateEvent("G:STATE", 5, TimeFreq(micros=100_000), ">="),
                                    "M:OUTTMP.READING.SCALED@S,G:STATE,5,100M,>="),
    "M:OUTTMP@s,g:state,-1,0,*": ("M:OUTTMP", "READING", None, "SCALED",
                                  StateEvent("G:STATE", -1, TimeFreq(micros=0), "*"),
                                  "M:OUTTMP.READING.SCALED@S,G:STATE,-1,0,*"),
}


@pytest.mark.parametrize("text", list(VALID))
def test_valid_request(text):
    device, prop, rng, field, event, canonical = VALID[text]
    r = acnet.parse(text)
    assert (r.device, r.property, r.range, r.field, r.event) == (device, prop, rng, field, event)
    assert r.canonical() == canonical
    again = acnet.parse(r.canonical())
    assert again == r and again.canonical() == canonical
    pretty = r.pretty_print()
    assert f"device:   {device}" in pretty and f"property: {prop}" in pretty


def test_pretty_print_in_words():
    text = acnet.parse("N:IHA1R.SETTING[2:5]@P,500,FALSE").pretty_print()
    assert text.splitlines() == ["device:   N:IHA1R", "property: SETTING", "range:    elements 2 to 5",
                                 "field:    SCALED", "event:    periodic, every 0.5 s"]
    assert "clock event 0x1D" in acnet.parse("B:TRMH1D@E,1D,E,10").pretty_print()


# text -> (words of the message, 1-based character)
INVALID = {
    "": ("missing device name", 1),
    "MXOUTTMP": ("expected a qualifier character", 2),
    "#:OUTTMP": ("a device starts with a letter", 1),
    "M:": ("missing device name after the qualifier", 3),
    "0:ABC": ("a device index (0:...) is a number", 3),
    "M:OUTTMP.FOO": ("'FOO' is not a field of READING", 10),
    "M_OUTTMP.READING": ("property READING disagrees with the qualifier '_'", 10),
    "M|OUTTMP.SCALED": ("'SCALED' is not a field of STATUS", 10),
    "M&OUTTMP.RAW": ("property CONTROL has no fields", 10),
    "M:OUTTMP.DESC.TEXT": ("property DESCRIPTION has no fields", 15),
    "M:OUTTMP.": ("expected a property or field name after '.'", 10),
    "M:OUTTMP[5:2]": ("array end index 2 is before the start index 5", 12),
    "M:OUTTMP[70000]": ("array index 70000 is larger than 65535", 10),
    "M:OUTTMP[1": ("is not closed", 9),
    "M:OUTTMP[a]": ("array index must be a non-negative integer", 10),
    "M:OUTTMP{}": ("a byte range needs an offset", 10),
    "M:OUTTMP{1:0}": ("byte length must be > 0", 12),
    "M:OUTTMP.RAW[1]": ("a range comes before the field", 13),
    "M:OUTTMP.RAW.RAW": ("a second field", 13),
    "M:OUTTMP[1]x": ("unexpected 'x'", 12),
    "M:OUTTMP@": ("missing event after '@'", 10),
    "M:OUTTMP@X": ("unknown event 'X'", 10),
    "M:OUTTMP@I,1": ("event I takes no arguments", 11),
    "M:OUTTMP@P,10Z": ("unknown unit 'Z'", 14),
    "M:OUTTMP@P,0": ("period must be > 0", 12),
    "M:OUTTMP@P,1S,MAYBE": ("expected TRUE or FALSE", 15),
    "M:OUTTMP@P,99999999999": ("period 99999999999 is larger than 2147483647", 12),
    "M:OUTTMP@E": ("a clock event needs its number", 11),
    "M:OUTTMP@E,1FFFF": ("larger than 16 bits", 12),
    "M:OUTTMP@E,XYZ": ("clock event number must be hexadecimal", 12),
    "M:OUTTMP@E,2,Z": ("clock event type must be H, S or E", 14),
    "M:OUTTMP@E,2,E,5H": ("delay: unknown unit 'H'", 17),
    "M:OUTTMP@S,G:STATE,5,100": ("a state event is @S,device,value,time,op", 10),
    "M:OUTTMP@S,G:STATE,5,100,=>": ("state operator must be one of", 26),
    "M:OUTTMP@S,G:STATE,five,100,=": ("state value must be an integer", 20),
    "M:OUTTMP@S,GSTATE,5,100,=": ("expected a qualifier character", 13),
}


@pytest.mark.parametrize("text", list(INVALID))
def test_invalid_request(text):
    words, pos = INVALID[text]
    with pytest.raises(ValueError) as err:
        acnet.parse(text)
    msg = str(err.value)
    assert words in msg
    assert msg.endswith(f"at character {pos}"), msg


def test_not_a_string():
    with pytest.raises(TypeError, match="must be a str"):
        acnet.parse(b"M:OUTTMP")
