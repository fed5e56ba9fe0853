-- torsh/profiler/html.lua — the profile as one self-contained HTML file (inline
-- CSS, JS and data; nothing fetched): a timeline of every thread (wheel to
-- zoom, drag to pan, double-click to reset, hover for details), a flame graph
-- of self time by stack (click to zoom), the op table (click a heading to
-- sort; grouped by input shape on request), the memory curve and the
-- bottleneck and leak reports. The script sets data-rendered="1" on <body>
-- when everything is drawn (data-render-error when a part failed), which is
-- what the headless-browser test looks for.
local A = require "torsh.profiler.analysis"
local E = require "torsh.profiler.export"

local M = {}

M.max_events = 200000     -- the timeline keeps the longest events beyond this

local function json_num(x)
  if x ~= x or x == math.huge or x == -math.huge then return "null" end
  if math.type(x) == "integer" then return tostring(x) end
  return string.format("%.6g", x)
end

-- A small JSON writer for the data block (arrays of numbers/strings, tables with string keys).
local function json(v)
  local t = type(v)
  if t == "number" then return json_num(v) end
  if t == "string" then return E.jstr(v) end
  if t == "boolean" then return tostring(v) end
  if t == "nil" then return "null" end
  if #v > 0 or next(v) == nil then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = json(x) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  local parts = {}
  for k, x in pairs(v) do parts[#parts + 1] = E.jstr(k) .. ":" .. json(x) end
  table.sort(parts)
  return "{" .. table.concat(parts, ",") .. "}"
end

local KIND = { op = 0, node = 1, range = 2, lua = 3, root = 4 }

local function flame_json(n)
  local kids = {}
  for i, c in ipairs(n.order) do kids[i] = flame_json(c) end
  return "[" .. E.jstr(n.name) .. "," .. (KIND[n.kind] or 0) .. "," .. n.total .. "," .. n.self .. ",[" ..
    table.concat(kids, ",") .. "]]"
end

local function op_rows(p, by_shape)
  local rows = A.key_averages(p, { group_by_shape = by_shape, sort = "self" })
  local out = {}
  for i, r in ipairs(rows) do
    out[i] = { r.name, r.kind, r.shapes or "", r.count, r.total, r.self, r.mean, r.self_pct, r.alloc }
  end
  return out
end

--- M.data(p) -> the JSON text of the report's data block.
function M.data(p)
  local events = p.events
  if #events > M.max_events then
    local sorted = table.move(events, 1, #events, 1, {})
    table.sort(sorted, function(a, b) return (a.t1 - a.t0) > (b.t1 - b.t0) end)
    local keep = {}
    for i = 1, M.max_events do keep[sorted[i]] = true end
    local list = {}
    for _, e in ipairs(events) do if keep[e] then list[#list + 1] = e end end
    events = list
  end
  local threads, tindex = {}, {}
  local names, nindex, inputs, iindex = {}, {}, {}, {}
  local function intern(list, index, s)
    local i = index[s]
    if not i then list[#list + 1] = s; i = #list - 1; index[s] = i end
    return i
  end
  local ev = {}
  for _, e in ipairs(events) do
    local ti = tindex[e.tid]
    if not ti then
      threads[#threads + 1] = { tid = e.tid, name = e.tid == p.main_tid and "main" or ("thread " .. e.tid) }
      ti = #threads - 1
      tindex[e.tid] = ti
    end
    ev[#ev + 1] = "[" .. ti .. "," .. e.t0 .. "," .. (e.t1 - e.t0) .. "," .. intern(names, nindex, A.label(e)) .. "," ..
      KIND[e.kind] .. "," .. e.depth .. "," .. (e.inputs and intern(inputs, iindex, e.inputs) or -1) .. "," ..
      (e.alloc or 0) .. "," .. e.self .. "]"
  end
  local mem, devs, dindex = {}, {}, {}
  local samples = p.memory or {}
  local stride = math.max(1, #samples // 20000)
  for i = 1, #samples, stride do
    local m = samples[i]
    mem[#mem + 1] = "[" .. m.t .. "," .. m.live .. "," .. m.peak .. "," .. intern(devs, dindex, m.device) .. "]"
  end
  if #samples > 0 and (#samples - 1) % stride ~= 0 then
    local m = samples[#samples]
    mem[#mem + 1] = "[" .. m.t .. "," .. m.live .. "," .. m.peak .. "," .. intern(devs, dindex, m.device) .. "]"
  end
  local leaks = {}
  for i, r in ipairs(A.leak_rows(p)) do leaks[i] = { r.op, r.count, r.bytes, r.stack } end
  local b = p:bottlenecks()
  local parts = {
    '"title":' .. E.jstr(p.title or "torsh profile"),
    '"wall_ns":' .. (p.duration or 0),
    '"dropped":' .. (p.dropped or 0),
    '"shown":' .. #events, '"total_events":' .. #p.events,
    '"threads":' .. json(threads), '"names":' .. json(names), '"inputs":' .. json(inputs),
    '"events":[' .. table.concat(ev, ",") .. "]",
    '"memory":[' .. table.concat(mem, ",") .. "]", '"devices":' .. json(devs),
    '"flame":' .. flame_json(p.tree),
    '"ops":' .. json(op_rows(p, false)), '"ops_by_shape":' .. json(op_rows(p, true)),
    '"bottlenecks":' .. E.jstr(A.bottleneck_report(b)),
    '"split":' .. json({ b.ops_time, b.data_wait, b.host, b.window }),
    '"leaks":' .. json(leaks),
  }
  return "{" .. table.concat(parts, ",") .. "}"
end

local CSS = [==[
body{font:13px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f6f6f3;color:#222}
header{background:#23313f;color:#fff;padding:12px 20px}header h1{margin:0;font-size:18px}
header .facts{opacity:.85;margin-top:4px}
section{background:#fff;margin:14px 20px;padding:10px 14px;border:1px solid #ddd;border-radius:6px}
section h2{font-size:15px;margin:2px 0 8px}
.hint{color:#777;font-size:12px;margin-left:8px;font-weight:normal}
canvas{display:block;width:100%;border:1px solid #e4e4e4;cursor:crosshair}
pre{background:#fafafa;border:1px solid #eee;padding:8px;overflow:auto;margin:0;white-space:pre-wrap}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
th{cursor:pointer;background:#f0f0ea;position:sticky;top:0}th:hover{background:#e4e4dc}
td:first-child,th:first-child,td.l,th.l{text-align:left}
.tablewrap{max-height:460px;overflow:auto}
#tip{position:absolute;display:none;background:#222;color:#fff;padding:6px 8px;border-radius:4px;font-size:12px;
pointer-events:none;max-width:520px;z-index:10;white-space:pre-wrap}
.bar{display:flex;height:18px;border-radius:3px;overflow:hidden;margin:6px 0}.bar div{height:100%}
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}
svg text{font-size:11px;fill:#444}
]==]

local JS = [==[
(function(){
"use strict";
var D=JSON.parse(document.getElementById("profile-data").textContent);
var errors=[];
function part(name,fn){try{fn();}catch(e){errors.push(name+": "+e);console.error(e);}}
function fmtT(ns){ns=+ns;if(ns>=1e9)return(ns/1e9).toFixed(3)+" s";if(ns>=1e6)return(ns/1e6).toFixed(3)+" ms";return(ns/1e3).toFixed(2)+" us";}
function fmtB(b){var a=Math.abs(b);if(a>=1073741824)return(b/1073741824).toFixed(2)+" GiB";if(a>=1048576)return(b/1048576).toFixed(2)+" MiB";if(a>=1024)return(b/1024).toFixed(1)+" KiB";return b+" B";}
function esc(s){return String(s).replace(/[&<>"]/g,function(c){return{"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c];});}
function hash(s){var h=2166136261;for(var i=0;i<s.length;i++){h^=s.charCodeAt(i);h=Math.imul(h,16777619)>>>0;}return h;}
function color(name,kind){var v=(hash(name)%1000)/1000;
 if(kind===3)return"rgb("+(80+60*v|0)+","+(160+60*v|0)+",220)";
 if(kind===2)return"rgb("+(110+60*v|0)+",200,110)";
 if(kind===1)return"rgb(190,"+(130+60*v|0)+",220)";
 return"rgb("+(225+30*v|0)+","+(90+120*v|0)+","+(40+40*v|0)+")";}
var KINDS=["op","node","range","lua","all"];
var tip=document.getElementById("tip");
function showTip(ev,html){tip.innerHTML=html;tip.style.display="block";
 var x=ev.pageX+14,y=ev.pageY+14;if(x+tip.offsetWidth>window.innerWidth+window.scrollX)x=ev.pageX-tip.offsetWidth-10;
 tip.style.left=x+"px";tip.style.top=y+"px";}
function hideTip(){tip.style.display="none";}
function setupCanvas(cv,h){var dpr=window.devicePixelRatio||1;var w=cv.clientWidth||1200;cv.width=w*dpr;cv.height=h*dpr;
 cv.style.height=h+"px";var ctx=cv.getContext("2d");ctx.setTransform(dpr,0,0,dpr,0,0);return{ctx:ctx,w:w,h:h};}

part("facts",function(){
 var f=document.getElementById("facts");
 f.textContent="wall time "+fmtT(D.wall_ns)+" \u00b7 "+D.total_events+" events"+(D.shown<D.total_events?" ("+D.shown+" longest shown)":"")+
  " \u00b7 "+D.threads.length+" thread"+(D.threads.length===1?"":"s")+(D.dropped?" \u00b7 "+D.dropped+" dropped by the ring buffer":"");
 document.getElementById("bottlenecks").textContent=D.bottlenecks;
 var s=D.split,w=s[3]||1,bar=document.getElementById("split"),cols=["#e8743b","#5aa0d8","#bbb"],names=["ops","waiting on data","outside ops (Lua/host)"];
 var lg=document.getElementById("splitlegend");
 for(var i=0;i<3;i++){var d=document.createElement("div");d.style.width=(100*s[i]/w)+"%";d.style.background=cols[i];d.title=names[i]+": "+fmtT(s[i]);bar.appendChild(d);
  var sp=document.createElement("span");sp.innerHTML="<i style='background:"+cols[i]+"'></i>"+names[i]+" "+(100*s[i]/w).toFixed(1)+"%";lg.appendChild(sp);}
});

part("timeline",function(){
 var cv=document.getElementById("timeline"),ROW=16,TOP=36;
 var lanes=[],laneOf={},y=TOP;
 D.threads.forEach(function(t,ti){var maxd=0;D.events.forEach(function(e){if(e[0]===ti&&e[5]>maxd)maxd=e[5];});
  lanes.push({name:t.name,y:y,depth:maxd+1,rows:[]});y+=(maxd+1)*ROW+22;});
 for(var l=0;l<lanes.length;l++)for(var d=0;d<lanes[l].depth;d++)lanes[l].rows.push([]);
 D.events.forEach(function(e){lanes[e[0]].rows[e[5]].push(e);});
 lanes.forEach(function(L){L.rows.forEach(function(r){r.sort(function(a,b){return a[1]-b[1];});});});
 var H=Math.max(y+4,80),c=setupCanvas(cv,H),ctx=c.ctx,W=c.w;
 /* the initial view spans the recorded events (a schedule may keep only a few late steps) */
 var start=Infinity,end=0;D.events.forEach(function(e){if(e[1]<start)start=e[1];if(e[1]+e[2]>end)end=e[1]+e[2];});
 if(!D.events.length){start=0;end=Math.max(D.wall_ns,1);}
 var pad=Math.max((end-start)*0.01,500);start=Math.max(0,start-pad);end=end+pad;
 var v0=start,v1=end;
 function X(t){return(t-v0)/(v1-v0)*W;}
 function draw(){ctx.clearRect(0,0,W,H);ctx.font="11px sans-serif";ctx.textBaseline="middle";
  var span=v1-v0,step=Math.pow(10,Math.floor(Math.log10(span/8)));if(span/step>16)step*=5;else if(span/step>8)step*=2;
  ctx.fillStyle="#888";ctx.strokeStyle="#eee";
  for(var t=Math.ceil(v0/step)*step;t<v1;t+=step){var x=X(t);ctx.beginPath();ctx.moveTo(x,12);ctx.lineTo(x,H);ctx.stroke();ctx.fillText(fmtT(t),x+2,7);}
  lanes.forEach(function(L){ctx.fillStyle="#333";ctx.fillText(L.name,4,L.y-6);
   L.rows.forEach(function(r,d){var lastx=-1;
    for(var i=0;i<r.length;i++){var e=r[i],x0=X(e[1]),x1=X(e[1]+e[2]);if(x1<0)continue;if(x0>W)break;
     var w=Math.max(x1-x0,0.8);if(w<1&&Math.floor(x0)===lastx)continue;lastx=Math.floor(x0);
     var nm=D.names[e[3]];ctx.fillStyle=color(nm,e[4]);ctx.fillRect(x0,L.y+d*ROW,w,ROW-2);
     if(w>36){ctx.fillStyle="#111";ctx.save();ctx.beginPath();ctx.rect(x0,L.y+d*ROW,w,ROW);ctx.clip();
      ctx.fillText(nm,Math.max(x0,0)+3,L.y+d*ROW+ROW/2-1);ctx.restore();}}});});}
 function hit(mx,my){var t=v0+mx/W*(v1-v0),tol=(v1-v0)/W*2;
  for(var l=0;l<lanes.length;l++){var L=lanes[l],d=Math.floor((my-L.y)/ROW);if(d<0||d>=L.depth)continue;
   var r=L.rows[d],lo=0,hi=r.length-1,best=-1;while(lo<=hi){var m=(lo+hi)>>1;if(r[m][1]<=t+tol){best=m;lo=m+1;}else hi=m-1;}
   for(var k=best;k>=0&&k>best-3;k--){var e=r[k];if(e[1]-tol<=t&&t<=e[1]+e[2]+tol)return e;}}return null;}
 var drag=null;
 cv.addEventListener("wheel",function(ev){ev.preventDefault();var rect=cv.getBoundingClientRect(),mx=ev.clientX-rect.left;
  var t=v0+mx/W*(v1-v0),f=ev.deltaY>0?1.25:0.8;v0=t-(t-v0)*f;v1=t+(v1-t)*f;if(v1-v0<1000){var m=(v0+v1)/2;v0=m-500;v1=m+500;}draw();},{passive:false});
 cv.addEventListener("mousedown",function(ev){drag={x:ev.clientX,v0:v0,v1:v1};});
 window.addEventListener("mouseup",function(){drag=null;});
 cv.addEventListener("dblclick",function(){v0=start;v1=end;draw();});
 cv.addEventListener("mousemove",function(ev){var rect=cv.getBoundingClientRect(),mx=ev.clientX-rect.left,my=ev.clientY-rect.top;
  if(drag){var dt=(ev.clientX-drag.x)/W*(drag.v1-drag.v0);v0=drag.v0-dt;v1=drag.v1-dt;draw();hideTip();return;}
  var e=hit(mx,my);if(!e){hideTip();return;}
  showTip(ev,"<b>"+esc(D.names[e[3]])+"</b> ("+KINDS[e[4]]+")\nstart "+fmtT(e[1])+", duration "+fmtT(e[2])+", self "+fmtT(e[8])+
   (e[6]>=0?"\ninputs "+esc(D.inputs[e[6]]):"")+(e[7]?"\nallocated "+fmtB(e[7]):""));});
 cv.addEventListener("mouseleave",hideTip);
 draw();
});

part("flame",function(){
 var cv=document.getElementById("flame"),ROW=17,root=D.flame,maxd=0;
 (function m(n,d){if(d>maxd)maxd=d;n[4].forEach(function(c){m(c,d+1);});})(root,0);
 var H=(maxd+1)*ROW+4,c=setupCanvas(cv,H),ctx=c.ctx,W=c.w,focus=root,path=[root],boxes=[];
 function findPath(n,target,acc){acc.push(n);if(n===target)return true;for(var i=0;i<n[4].length;i++)if(findPath(n[4][i],target,acc))return true;acc.pop();return false;}
 function draw(){ctx.clearRect(0,0,W,H);boxes=[];ctx.font="11px sans-serif";ctx.textBaseline="middle";
  var anc=[];findPath(root,focus,anc);
  anc.forEach(function(n,d){box(n,0,W,d);});
  function rec(n,x,w,d){box(n,x,w,d);var cx=x,tot=n[2]||1;n[4].forEach(function(ch){var cw=w*ch[2]/tot;if(cw>=0.4)rec(ch,cx,cw,d+1);cx+=cw;});}
  var dd=anc.length-1,cx=0,tot=focus[2]||1;
  focus[4].forEach(function(ch){var cw=W*ch[2]/tot;if(cw>=0.4)rec(ch,cx,cw,dd+1);cx+=cw;});}
 function box(n,x,w,d){var y=d*ROW;ctx.fillStyle=n[1]===4?"#ccc":color(n[0],n[1]);ctx.fillRect(x,y,Math.max(w-0.5,0.5),ROW-1);
  boxes.push([x,y,w,n]);if(w>30){ctx.fillStyle="#111";ctx.save();ctx.beginPath();ctx.rect(x,y,w,ROW);ctx.clip();
  ctx.fillText(n[1]===4?"all":n[0],x+3,y+ROW/2);ctx.restore();}}
 function at(ev){var r=cv.getBoundingClientRect(),mx=ev.clientX-r.left,my=ev.clientY-r.top;
  for(var i=boxes.length-1;i>=0;i--){var b=boxes[i];if(mx>=b[0]&&mx<=b[0]+b[2]&&my>=b[1]&&my<b[1]+ROW)return b[3];}return null;}
 cv.addEventListener("mousemove",function(ev){var n=at(ev);if(!n){hideTip();return;}
  showTip(ev,"<b>"+esc(n[1]===4?"all":n[0])+"</b> ("+KINDS[n[1]]+")\ntotal "+fmtT(n[2])+" ("+(100*n[2]/(root[2]||1)).toFixed(2)+"%), self "+fmtT(n[3])+"\nclick: zoom in \u00b7 double-click: reset");});
 cv.addEventListener("mouseleave",hideTip);
 cv.addEventListener("click",function(ev){var n=at(ev);if(n){focus=n;draw();}});
 cv.addEventListener("dblclick",function(){focus=root;draw();});
 draw();
});

part("ops",function(){
 var table=document.getElementById("optable"),byShape=document.getElementById("byshape"),filter=document.getElementById("opfilter");
 var cols=[["Name",0,"l"],["Kind",1,"l"],["Input shapes",2,"l"],["Calls",3],["Total",4],["Self",5],["Mean",6],["Self %",7],["Alloc",8]];
 var sortCol=5,desc=true;
 function fmt(i,v){if(i===4||i===5||i===6)return fmtT(v);if(i===7)return v.toFixed(2)+"%";if(i===8)return fmtB(v);return esc(v);}
 function render(){var rows=(byShape.checked?D.ops_by_shape:D.ops).slice(),q=filter.value.toLowerCase();
  if(q)rows=rows.filter(function(r){return r[0].toLowerCase().indexOf(q)>=0;});
  rows.sort(function(a,b){var x=a[sortCol],y=b[sortCol];var c=typeof x==="string"?x.localeCompare(y):x-y;return desc?-c:c;});
  var h="<thead><tr>";cols.forEach(function(c,i){if(i===2&&!byShape.checked)return;
   h+="<th class='"+(c[2]||"")+"' data-col='"+c[1]+"'>"+c[0]+(sortCol===c[1]?(desc?" \u25bc":" \u25b2"):"")+"</th>";});
  h+="</tr></thead><tbody>";
  rows.forEach(function(r){h+="<tr>";cols.forEach(function(c,i){if(i===2&&!byShape.checked)return;h+="<td class='"+(c[2]||"")+"'>"+fmt(c[1],r[c[1]])+"</td>";});h+="</tr>";});
  table.innerHTML=h+"</tbody>";
  table.querySelectorAll("th").forEach(function(th){th.addEventListener("click",function(){var k=+th.getAttribute("data-col");
   if(k===sortCol)desc=!desc;else{sortCol=k;desc=k>=3;}render();});});
  table.setAttribute("data-rows",rows.length);}
 byShape.addEventListener("change",render);filter.addEventListener("input",render);render();
});

part("memory",function(){
 var svg=document.getElementById("memsvg"),NS="http://www.w3.org/2000/svg",W=svg.clientWidth||1200,H=220,P=46;
 svg.setAttribute("viewBox","0 0 "+W+" "+H);svg.setAttribute("height",H);
 if(!D.memory.length){svg.innerHTML="<text x='10' y='30'>no memory samples (profile_memory was off)</text>";return;}
 var tmax=Math.max(D.wall_ns,1),bmax=1;D.memory.forEach(function(m){if(m[2]>bmax)bmax=m[2];});
 function X(t){return P+(W-P-10)*t/tmax;}function Y(b){return H-22-(H-36)*b/bmax;}
 var h="";for(var i=0;i<=4;i++){var b=bmax*i/4;h+="<line x1='"+P+"' x2='"+(W-10)+"' y1='"+Y(b)+"' y2='"+Y(b)+"' stroke='#eee'/>"+
  "<text x='2' y='"+(Y(b)+4)+"'>"+fmtB(Math.round(b))+"</text>";}
 for(var k=0;k<=5;k++){var t=tmax*k/5;h+="<text x='"+(X(t)-10)+"' y='"+(H-6)+"'>"+fmtT(t)+"</text>";}
 var cols=[["#3b7dd8","#a9c8f0"],["#c0392b","#efb1aa"]];
 D.devices.forEach(function(dev,di){var live="",peak="",last=null;
  var lastp=null;D.memory.forEach(function(m){if(m[3]!==di)return;if(last!==null)live+=X(m[0])+","+Y(last)+" ";live+=X(m[0])+","+Y(m[1])+" ";last=m[1];
   if(lastp!==null)peak+=X(m[0])+","+Y(lastp)+" ";peak+=X(m[0])+","+Y(m[2])+" ";lastp=m[2];});
  h+="<polyline fill='none' stroke='"+cols[di%2][1]+"' stroke-width='1.5' points='"+peak+"'><title>peak "+dev+"</title></polyline>";
  h+="<polyline fill='none' stroke='"+cols[di%2][0]+"' stroke-width='1.8' points='"+live+"'><title>live "+dev+"</title></polyline>";});
 h+="<line id='memcursor' y1='10' y2='"+(H-22)+"' stroke='#999' visibility='hidden'/>";
 svg.innerHTML=h;
 var cursor=document.getElementById("memcursor");
 svg.addEventListener("mousemove",function(ev){var r=svg.getBoundingClientRect(),mx=(ev.clientX-r.left)*W/r.width,t=(mx-P)/(W-P-10)*tmax;
  var best=null;D.memory.forEach(function(m){if(m[0]<=t)best=m;});if(!best){hideTip();return;}
  cursor.setAttribute("x1",mx);cursor.setAttribute("x2",mx);cursor.setAttribute("visibility","visible");
  showTip(ev,"at "+fmtT(t)+" ("+esc(D.devices[best[3]])+")\nlive "+fmtB(best[1])+"\npeak "+fmtB(best[2]));});
 svg.addEventListener("mouseleave",function(){hideTip();cursor.setAttribute("visibility","hidden");});
});

part("leaks",function(){
 var el=document.getElementById("leaks");
 if(!D.leaks.length){el.innerHTML="<p>No leak report (none left, or allocation tracking was off).</p>";return;}
 var h="<div class='tablewrap'><table><thead><tr><th class='l'>Made by</th><th>Blocks</th><th>Bytes</th><th class='l'>Lua stack (leaf first)</th></tr></thead><tbody>";
 D.leaks.forEach(function(r){h+="<tr><td class='l'>"+esc(r[0])+"</td><td>"+r[1]+"</td><td>"+fmtB(r[2])+"</td><td class='l'>"+esc(r[3])+"</td></tr>";});
 el.innerHTML=h+"</tbody></table></div>";
});

if(errors.length){document.body.setAttribute("data-render-error",errors.join("; "));
 var p=document.createElement("pre");p.textContent="report errors: "+errors.join("\n");document.body.insertBefore(p,document.body.firstChild);}
else document.body.setAttribute("data-rendered","1");
})();
]==]

--- M.report(p) -> the HTML text.
function M.report(p)
  local data = M.data(p):gsub("</", "<\\/")
  local title = E.xml(p.title or "torsh profile")
  return table.concat {
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>', title, '</title>\n',
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n<style>', CSS, '</style></head>\n<body>\n',
    '<header><h1>', title, '</h1><div class="facts" id="facts"></div></header>\n',
    '<section><h2>Where the time went</h2><div class="bar" id="split"></div><div class="legend" id="splitlegend"></div>',
    '<pre id="bottlenecks"></pre></section>\n',
    '<section><h2>Timeline<span class="hint">wheel: zoom \u{b7} drag: pan \u{b7} double-click: reset \u{b7} hover: details</span></h2>',
    '<canvas id="timeline"></canvas></section>\n',
    '<section><h2>Flame graph (self time by stack)<span class="hint">click: zoom in \u{b7} double-click: reset</span></h2>',
    '<canvas id="flame"></canvas></section>\n',
    '<section><h2>Ops<span class="hint">click a heading to sort</span></h2>',
    '<label><input type="checkbox" id="byshape"> group by input shape</label> ',
    '<input id="opfilter" placeholder="filter by name"> <div class="tablewrap"><table id="optable"></table></div></section>\n',
    '<section><h2>Tensor memory<span class="hint">live (dark) and peak (light) bytes over time</span></h2>',
    '<svg id="memsvg" width="100%" height="220"></svg></section>\n',
    '<section><h2>Allocations still alive at the end</h2><div id="leaks"></div></section>\n',
    '<div id="tip"></div>\n',
    '<script type="application/json" id="profile-data">', data, '</script>\n',
    '<script>', JS, '</script>\n</body></html>\n',
  }
end

return M
