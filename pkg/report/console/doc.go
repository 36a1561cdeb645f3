// Package console renders results for a terminal with go-pretty: result
// tables built from the same report.Table column declarations as the CSV
// files, the start banner (a titled key/value panel) and the post-run
// validation summary.
//
// Output goes to the io.Writer given; nothing is printed elsewhere. Colour is
// used only when Options.Color is set (the caller sets it when the output is
// a terminal). This package never touches go-pretty's global colour switch:
// with Color false the output holds no escape codes whatever that switch says
// (with Color true, go-pretty still leaves colour out under NO_COLOR or
// TERM=dumb).
package console
