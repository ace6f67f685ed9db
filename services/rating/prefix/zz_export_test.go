package prefix

func ZZArena(t *Table) []uint64 { return t.arena }
func ZZSetTop(d int) { ZZTopDepth = d }

