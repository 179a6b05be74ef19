package embed

import "strings"

// irregular maps the past forms of English irregular verbs to their base
// form, which the stemmer cannot derive: "took" is "take" and "ran" is
// "run", as "rotated" is "rotate". Without it a question in the past tense
// ("how long a backup took") holds a word no page has, and a past form
// that spells another verb's base matched it: "founded" stems to "found",
// which was also "not found". Forms that are common words of their own
// ("left", "saw", "bound", "lay", "ground", "lit") are left out.
var irregular = func() map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(irregularVerbs), "\n") {
		base, forms, _ := strings.Cut(line, ":")
		for _, f := range strings.Fields(forms) {
			m[f] = base
		}
	}
	return m
}()

// irregularVerbs lists base: past forms, one verb a line.
const irregularVerbs = `
arise: arose arisen
awake: awoke awoken
be: was were been
bear: bore borne
beat: beaten
become: became
begin: began begun
bend: bent
bite: bit bitten
bleed: bled
blow: blew blown
break: broke broken
breed: bred
bring: brought
build: built
burn: burnt
buy: bought
catch: caught
choose: chose chosen
come: came
creep: crept
deal: dealt
dig: dug
do: did done
draw: drew drawn
dream: dreamt
drink: drank drunk
drive: drove driven
eat: ate eaten
fall: fallen
feed: fed
fight: fought
find: found
flee: fled
fly: flew flown
forbid: forbade forbidden
forget: forgot forgotten
forgive: forgave forgiven
freeze: froze frozen
get: got gotten
give: gave given
go: went gone
grow: grew grown
hang: hung
have: had
hear: heard
hide: hid hidden
hold: held
keep: kept
kneel: knelt
know: knew known
lay: laid
lead: led
leap: leapt
learn: learnt
lend: lent
lie: lain
lose: lost
make: made
mean: meant
meet: met
mistake: mistook mistaken
overwrite: overwrote overwritten
pay: paid
prove: proven
rewrite: rewrote rewritten
ride: rode ridden
ring: rang rung
rise: risen
run: ran
say: said
see: seen
seek: sought
sell: sold
send: sent
shake: shook shaken
shine: shone
show: shown
shrink: shrank shrunk
sing: sang sung
sink: sank sunk
sit: sat
sleep: slept
slide: slid
speak: spoke spoken
speed: sped
spend: spent
spin: spun
spring: sprang sprung
stand: stood
steal: stole stolen
strike: struck
swear: swore sworn
sweep: swept
swim: swam swum
swing: swung
take: took taken
teach: taught
tear: tore torn
tell: told
think: thought
throw: threw thrown
understand: understood
undo: undid undone
wake: woke woken
wear: wore worn
weave: wove woven
weep: wept
win: won
withdraw: withdrew withdrawn
write: wrote written
`
