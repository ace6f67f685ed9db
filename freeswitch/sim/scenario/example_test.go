package scenario_test

import (
	"fmt"

	"github.com/ringback/ringback/freeswitch/sim/scenario"
)

func Example() {
	s, err := scenario.Parse([]byte(`
seed: 42
rules:
  - {match: "486$", kind: busy}
  - match: "^\\+44"
    outcomes:
      - {weight: 3, kind: answer, ring: 2s, talk: {min: 10s, max: 20s}}
      - {weight: 1, kind: no_answer}
`))
	if err != nil {
		panic(err)
	}
	p, err := s.Compile()
	if err != nil {
		panic(err)
	}
	o := p.Pick("15551230486")
	fmt.Println(o.Kind, o.SIPStatus, o.Cause)

	o = p.Pick("15551234567") // no rule matches: the Default catch-all
	fmt.Println(o.Kind, o.SIPStatus, o.RingFor >= 800e6 && o.RingFor <= 1200e6)

	known, registered, o := p.User("1001")
	fmt.Println(known, registered, o.Kind, o.TalkFor)
	known, registered, o = p.User("1500")
	fmt.Println(known, registered, o.Cause)
	// Output:
	// busy 486 USER_BUSY
	// answer 200 true
	// true true answer 0s
	// true false USER_NOT_REGISTERED
}

func ExampleDefault() {
	p := scenario.Default().MustCompile()
	for _, number := range []string{"15550000", "15550486", "15550408", "15550600", "15550095"} {
		o := p.Pick(number)
		fmt.Printf("%s: %s %d %q %q\n", number, o.Kind, o.SIPStatus, o.Cause, o.DTMF)
	}
	// Output:
	// 15550000: answer 200 "" ""
	// 15550486: busy 486 "USER_BUSY" ""
	// 15550408: no_answer 0 "" ""
	// 15550600: rejected 603 "CALL_REJECTED" ""
	// 15550095: answer 200 "" "195"
}
